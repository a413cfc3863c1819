package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/apply"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/infile"
)

// savedPlan is `plan --out FILE`: what apply FILE carries out, bound to the
// spec (its digest), the target and the changes the plan saw. It holds no
// secret: diffs are redacted, credentials are not part of a plan.
type savedPlan struct {
	FormatVersion string            `json:"format_version"`
	Kind          string            `json:"kind"`
	Spec          string            `json:"spec"`
	SpecSHA256    string            `json:"spec_sha256"`
	Vars          map[string]string `json:"vars,omitempty"`
	API           string            `json:"api"`
	Org           string            `json:"org"`
	Options       savedOptions      `json:"options"`
	Changes       []*apply.Change   `json:"changes"`
}

type savedOptions struct {
	Parallel     int  `json:"parallel"`
	Prune        bool `json:"prune,omitempty"`
	Adopt        bool `json:"adopt,omitempty"`
	Shard        int  `json:"shard,omitempty"`
	Shards       int  `json:"shards,omitempty"`
	AllowOutside bool `json:"allow_outside_paths,omitempty"`
}

const planKind = "xsprov-plan"

// specDigest is the digest of the spec file the plan was made from.
func specDigest(path string) (string, error) {
	b, err := infile.Read(path, infile.Document)
	if err != nil {
		return "", cfapi.Usagef("read spec: %v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func writePlan(path string, p *savedPlan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return credfile.WriteFileAtomic(path, append(b, '\n'))
}

// readPlan reads a saved plan and fills the options it was made with.
func readPlan(path string, o *SpecOptions) (*savedPlan, error) {
	b, err := infile.Read(path, infile.Document)
	if err != nil {
		return nil, cfapi.Usagef("read plan: %v", err)
	}
	var p savedPlan
	if err := json.Unmarshal(b, &p); err != nil || p.Kind != planKind || p.FormatVersion != provision.FormatVersion {
		return nil, cfapi.Usagef("%s is not a plan saved by xsprov plan --out", path)
	}
	digest, err := specDigest(p.Spec)
	if err != nil {
		return nil, err
	}
	if digest != p.SpecSHA256 {
		return nil, cfapi.Usagef("the spec %s changed since the plan %s was saved; nothing was sent (run plan again)", p.Spec, path)
	}
	o.File = p.Spec
	o.Vars = o.Vars[:0]
	for _, k := range slices.Sorted(maps.Keys(p.Vars)) {
		o.Vars = append(o.Vars, k+"="+p.Vars[k])
	}
	o.Parallel, o.Prune, o.Adopt, o.shard, o.shards, o.AllowOutside = p.Options.Parallel, p.Options.Prune, p.Options.Adopt, p.Options.Shard, p.Options.Shards, p.Options.AllowOutside
	return &p, nil
}

// expect is the check that the landscape is still what the saved plan saw:
// the same changes, each with the same action, reason and diff.
func (p *savedPlan) expect(api, org string) func(*apply.Result) error {
	return func(now *apply.Result) error {
		if strings.TrimRight(api, "/") != strings.TrimRight(p.API, "/") || !strings.EqualFold(org, p.Org) {
			return &stalePlan{what: fmt.Sprintf("the plan is for org %s at %s, not org %s at %s", p.Org, p.API, org, api)}
		}
		was, is := fingerprints(p.Changes), fingerprints(now.Changes)
		for addr, f := range was {
			if is[addr] != f {
				return &stalePlan{what: fmt.Sprintf("%s: planned %q, now %q", addr, f, cmp.Or(is[addr], "nothing"))}
			}
		}
		for addr, f := range is {
			if _, ok := was[addr]; !ok {
				return &stalePlan{what: fmt.Sprintf("%s: not planned, now %q", addr, f)}
			}
		}
		return nil
	}
}

func fingerprints(cs []*apply.Change) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		var diff []string
		for _, d := range c.Diff {
			diff = append(diff, d.String())
		}
		out[c.Address] = strings.TrimSpace(string(c.Action) + " " + c.Reason + " " + strings.Join(diff, "; "))
	}
	return out
}

// stalePlan: the landscape changed since the plan was saved. Nothing was
// sent.
type stalePlan struct{ what string }

func (e *stalePlan) Error() string {
	return "the landscape changed since the plan was saved (" + e.what + "); nothing was sent: run plan again"
}
