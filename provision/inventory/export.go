package inventory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/spec"
)

// ExportResult is a spec written from a space, and what it could not know.
type ExportResult struct {
	YAML []byte
	// Unknown names the instances whose parameters are left out (apply
	// leaves their descriptors as they are).
	Unknown []string
	// Instances is how many instances the spec holds.
	Instances int
	// Name is the spec's metadata.name; OwnedElsewhere names the instances
	// another spec owns (a plan of this one reports them as errors).
	Name           string
	OwnedElsewhere map[string][]string // owner → instances
}

// Export writes the instances of sc as an onboarding spec: each with its
// offering and plan, tags, parameters and keys (names and parameters, never
// credentials). Parameters come from the instance where the offering lets
// them be read back, else from what xsprov recorded on it when it applied
// them; otherwise they are left out with a comment saying so, and apply then
// leaves the descriptor as it is. name is the spec's metadata.name ("" for
// the owner the instances share, else ORG-SPACE).
func Export(ctx context.Context, s *cfapi.Session, sc Scope, name string) (*ExportResult, error) {
	insts, err := List(ctx, s, sc)
	if err != nil {
		return nil, err
	}
	res := &ExportResult{OwnedElsewhere: map[string][]string{}}
	if name == "" {
		name = commonOwner(insts)
	}
	if name == "" {
		name = strings.ToLower(sc.Org + "-" + cmpOr(sc.Space, "all"))
	}
	res.Name = name
	for _, in := range insts {
		if in.Owner != "" && in.Owner != name {
			res.OwnedElsewhere[in.Owner] = append(res.OwnedElsewhere[in.Owner], in.Name)
		}
	}
	root := mapping()
	put(root, "apiVersion", scalar(spec.APIVersion))
	meta := mapping()
	put(meta, "name", scalar(name))
	put(root, "metadata", meta)
	target := mapping()
	put(target, "org", scalar(sc.Org))
	put(root, "target", target)
	if !sc.AllSpaces {
		defaults := mapping()
		put(defaults, "space", scalar(sc.Space))
		put(root, "defaults", defaults)
	}
	list := &yaml.Node{Kind: yaml.SequenceNode}
	// offerings that refused to return parameters: not asked again
	unreadable := map[string]bool{}
	for _, in := range insts {
		if in.inst.Type == "user-provided" {
			continue
		}
		m := mapping()
		put(m, "name", scalar(in.Name))
		if sc.AllSpaces {
			put(m, "space", scalar(in.Space))
		}
		if in.Offering != "xsuaa" || in.Plan != "application" {
			put(m, "offering", scalar(in.Offering))
			put(m, "plan", scalar(in.Plan))
		}
		params, why, err := parametersOf(ctx, s, in, unreadable)
		if err != nil {
			return nil, err
		}
		if params != nil {
			n := &yaml.Node{}
			if err := n.Encode(params); err != nil {
				return nil, fmt.Errorf("parameters of %s: %w", in.Name, err)
			}
			put(m, "parameters", n)
		} else {
			m.Content[0].HeadComment = "parameters unknown: " + why + ";\napply leaves this instance's descriptor as it is"
			res.Unknown = append(res.Unknown, in.Name)
		}
		if len(in.Tags) > 0 {
			n := &yaml.Node{}
			_ = n.Encode(in.Tags)
			n.Style = yaml.FlowStyle
			put(m, "tags", n)
		}
		if keys := exportKeys(in); len(keys.Content) > 0 {
			put(m, "keys", keys)
		}
		list.Content = append(list.Content, m)
		res.Instances++
	}
	put(root, "instances", list)
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: fmt.Sprintf("Exported by xsprov from org %s / %s. No credentials are in it; keys\nwrite no files until you give them an out: path.", sc.Org, spaceWords(sc))}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	res.YAML = []byte(b.String())
	return res, nil
}

// parametersOf finds an instance's parameters: read back, else xsprov's
// record; nil and why when neither is there.
func parametersOf(ctx context.Context, s *cfapi.Session, in *Instance, unreadable map[string]bool) (map[string]any, string, error) {
	if !unreadable[in.Offering] && !cfapi.OpBusy(in.inst.LastOperation) {
		p, err := s.InstanceParams(ctx, in.GUID)
		if err != nil {
			return nil, "", err
		}
		if p != nil {
			return p, "", nil
		}
		unreadable[in.Offering] = true
	}
	rec, ok := provision.RecordOf(in.inst)
	switch {
	case !ok:
		return nil, "the offering does not return them and xsprov holds no record of them", nil
	case rec.Stale:
		return nil, "someone else updated the instance after xsprov recorded them", nil
	case rec.Descriptor == nil:
		return nil, "xsprov's record holds only their digest (too large for an annotation)", nil
	}
	return rec.Descriptor, "", nil
}

// exportKeys lists an instance's keys by their base names (a rotated key
// stands for its name) with the parameters xsprov recorded on them.
func exportKeys(in *Instance) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	var seen []string
	keys := slices.Clone(in.keyList)
	slices.SortFunc(keys, func(a, b *resource.ServiceCredentialBinding) int {
		return strings.Compare(cfapi.KeyName(a, ""), cfapi.KeyName(b, ""))
	})
	for _, k := range keys {
		name := cfapi.KeyName(k, "")
		if i := strings.Index(name, cfapi.RotatedSep); i > 0 {
			name = name[:i]
		}
		if name == "" || slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
		m := mapping()
		put(m, "name", scalar(name))
		if p := provision.KeyParamsOf(k); p != nil {
			n := &yaml.Node{}
			if n.Encode(p) == nil {
				n.Style = yaml.FlowStyle
				put(m, "parameters", n)
			}
		}
		seq.Content = append(seq.Content, m)
	}
	return seq
}

func commonOwner(insts []*Instance) string {
	owner := ""
	for _, in := range insts {
		switch {
		case in.Owner == "":
			return ""
		case owner == "":
			owner = in.Owner
		case owner != in.Owner:
			return ""
		}
	}
	return owner
}

func spaceWords(sc Scope) string {
	if sc.AllSpaces {
		return "all spaces"
	}
	return "space " + sc.Space
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

func put(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, scalar(key), v)
}
