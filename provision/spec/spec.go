// Package spec is the onboarding spec (apiVersion xsprov/v1): its types,
// loading with every problem at its line and column, and sharding.
package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/xsprov/xsprov/provision/remedy"
)

// APIVersion is the version of the onboarding spec format.
const APIVersion = "xsprov/v1"

// OwnerLabel is the metadata label that marks resources owned by a spec.
const OwnerLabel = "xsprov.io/spec"

// Spec is an onboarding spec: spaces, instances, keys and files to converge.
type Spec struct {
	APIVersion string            `yaml:"apiVersion"`
	Metadata   Metadata          `yaml:"metadata"`
	Target     Target            `yaml:"target"`
	Variables  map[string]string `yaml:"variables"`
	Defaults   Defaults          `yaml:"defaults"`
	Spaces     []Space           `yaml:"spaces"`
	Instances  []*Instance       `yaml:"instances"`
	Keys       []*Key            `yaml:"keys"`

	// File is where the spec was read from; paths in it are relative to it.
	File string `yaml:"-"`
}

// Metadata names the spec; the name goes into ownership labels.
type Metadata struct {
	Name string `yaml:"name"`
}

// Target is where the spec applies (flags and environment may override).
type Target struct {
	API string `yaml:"api"`
	Org string `yaml:"org"`
}

// Defaults apply to every instance and key that does not say otherwise.
type Defaults struct {
	Space    string `yaml:"space"`
	Offering string `yaml:"offering"`
	Plan     string `yaml:"plan"`
	Broker   string `yaml:"broker"`
	Format   string `yaml:"format"`
	Verify   *bool  `yaml:"verify"`
}

// Space is a space to ensure, with roles.
type Space struct {
	Name  string `yaml:"name"`
	Roles []Role `yaml:"roles"`
}

// Role gives a user a space role.
type Role struct {
	User   string `yaml:"user"`
	Origin string `yaml:"origin"`
	Role   string `yaml:"role"` // developer, manager, auditor, supporter
}

// Instance is an XSUAA instance with its keys.
type Instance struct {
	Name           string            `yaml:"name"`
	Space          string            `yaml:"space"`
	Offering       string            `yaml:"offering"`
	Plan           string            `yaml:"plan"`
	Broker         string            `yaml:"broker"`
	Template       string            `yaml:"template"`
	Vars           map[string]string `yaml:"vars"`
	Parameters     map[string]any    `yaml:"parameters"`
	ParametersFile string            `yaml:"parametersFile"`
	Tags           []string          `yaml:"tags"`
	Keys           []*Key            `yaml:"keys"`

	// Descriptor is the rendered, validated parameters.
	Descriptor map[string]any `yaml:"-"`
	// After are the instances of the same space this one is applied after
	// (an IAS instance after the XSUAA instances it is joined to and the
	// instances its consumed-services name); Consumes are the names its
	// consumed-services give that the spec does not hold (the space must).
	After    []string `yaml:"-"`
	Consumes []string `yaml:"-"`
	// Pairs are the XSUAA instances an IAS instance is joined to by
	// xsuaa-cross-consumption.
	Pairs []string `yaml:"-"`
	// DescriptorGiven: parameters, parametersFile or a template was given.
	// Without one, an existing instance's descriptor is left as it is (a
	// new one gets the minimal descriptor).
	DescriptorGiven bool `yaml:"-"`
	line            int
}

// Key is a service key and its credentials file.
type Key struct {
	Instance   string         `yaml:"instance"` // top-level keys only
	Name       string         `yaml:"name"`
	Parameters map[string]any `yaml:"parameters"`
	Out        string         `yaml:"out"`
	Format     string         `yaml:"format"`
	EnvPrefix  string         `yaml:"envPrefix"`
	Rotate     *Rotate        `yaml:"rotate"`
}

// Rotate is a key's rotation policy.
type Rotate struct {
	MaxAge string `yaml:"maxAge"` // Go duration, e.g. 720h
	maxAge time.Duration
}

// MaxAgeDuration returns the parsed maxAge.
func (r *Rotate) MaxAgeDuration() time.Duration {
	if r == nil {
		return 0
	}
	return r.maxAge
}

// Error lists every problem of a spec with file, line and column.
type Error struct {
	File     string
	Problems []Problem
	// Remedy is what to do about it, when there is one thing to do.
	Remedy remedy.Remedy
}

// Hint is what to do about it.
func (e *Error) Hint() remedy.Remedy { return e.Remedy }

// Problem is one problem in a spec.
type Problem struct {
	Line, Column int
	Msg          string
}

// Usage marks the error as bad input (exit code 2).
func (e *Error) Usage() bool { return true }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s:%d:%d: %s", e.File, p.Line, p.Column, p.Msg)
	}
	return b.String()
}

type usageError string

func (e usageError) Error() string { return string(e) }

// Usage marks the error as bad input (exit code 2).
func (e usageError) Usage() bool { return true }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }
