// Package apply plans, applies and destroys an onboarding spec over the
// engine's API (Engine): it reads the landscape in batched lists, decides
// what to change, and carries what it observed into the apply instead of
// looking it up again.
package apply

import (
	"strings"
	"sync"

	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/provision/xssec"
)

// Options steer plan, apply and destroy.
type Options struct {
	Org           string
	Parallel      int
	Prune, Adopt  bool
	Shard, Shards int // 1-based shard of Shards; 0 or 1 shard means all
	DeleteSpaces  bool
	// Expect, when set, vets the plan before anything is changed (a saved
	// plan being applied: the landscape must still be as it was).
	Expect func(*Result) error
}

// Action is what a plan intends for a resource. (A provision.Action is what
// up or down did; a plan's intent becomes one of those when it is applied.)
type Action string

// Actions of a plan.
const (
	ActCreate   Action = "create"
	ActUpdate          = "update"
	ActRecreate        = "recreate"
	ActRotate          = "rotate"
	ActAdopt           = "adopt"
	ActDelete          = "delete"
	ActWait            = "wait"
	ActNoop            = "no-op"
	ActError           = "error"
)

// Change is one planned (and, after apply, attempted) change.
type Change struct {
	Kind    string            `json:"kind"` // space, role, instance, key, file
	Address string            `json:"address"`
	Action  Action            `json:"action"`
	Reason  string            `json:"reason,omitempty"`
	Diff    []xssec.DiffEntry `json:"diff,omitempty"`
	Result  string            `json:"result,omitempty"` // ok, failed, skipped
	Error   string            `json:"error,omitempty"`
	// Hint is what the user can do about an error (the face words it).
	Hint remedy.Action `json:"-"`

	space  *spec.Space
	role   *spec.Role
	inst   *spec.Instance
	key    *spec.Key
	cur    *resource.ServiceInstance
	curKey *resource.ServiceCredentialBinding
	keys   []*resource.ServiceCredentialBinding // the instance's keys (rotation)
	creds  map[string]any                       // credentials the plan read for a file change
	// params the plan read (paramsRead), so the apply compares with them
	params     map[string]any
	paramsRead bool
}

// Changed tells whether the change does something.
func (c *Change) Changed() bool { return c.Action != ActNoop }

// Result is the machine-readable plan or apply report.
type Result struct {
	FormatVersion string         `json:"format_version"`
	Spec          string         `json:"spec"`
	Org           string         `json:"org"`
	Changes       []*Change      `json:"changes"`
	Summary       map[string]int `json:"summary"`
	Failed        int            `json:"failed"`
	// Pairs are IAS instances joined to XSUAA instances of the spec by
	// xsuaa-cross-consumption (applied after them).
	Pairs []Pair `json:"pairs,omitempty"`
}

// Pair is an IAS instance and an XSUAA instance it is joined to.
type Pair struct {
	IAS   string `json:"ias"`
	XSUAA string `json:"xsuaa"`
}

// HasChanges tells whether applying would change anything.
func (r *Result) HasChanges() bool {
	for _, c := range r.Changes {
		if c.Changed() {
			return true
		}
	}
	return false
}

func (r *Result) summarize() {
	r.Summary = map[string]int{}
	r.Failed = 0
	for _, c := range r.Changes {
		r.Summary[string(c.Action)]++
		if c.Result == "failed" || (c.Result == "" && c.Action == ActError) {
			r.Failed++
		}
	}
}

// planState is what planning learnt and applying reuses.
type planState struct {
	spec    *spec.Spec
	opts    Options
	orgName string
	orgGUID string
	spaces  map[string]*resource.Space // lower-case name → space
	plans   map[string]*planEntry
	mu      sync.Mutex
}

func (st *planState) specLabels() map[string]string {
	return map[string]string{spec.OwnerLabel: st.spec.Metadata.Name}
}

func ownedBy(m *resource.Metadata) string {
	if m == nil || m.Labels == nil || m.Labels[spec.OwnerLabel] == nil {
		return ""
	}
	return *m.Labels[spec.OwnerLabel]
}

func instAddr(space, name string) string { return "instance " + space + "/" + name }

// itemPrefix marks a worker's progress lines with the item it works on.
func itemPrefix(addr string) string { return "[" + strings.TrimPrefix(addr, "instance ") + "] " }
