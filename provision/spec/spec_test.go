package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestExampleSpecIsValid(t *testing.T) {
	s, err := Load("../../examples/onboarding.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Metadata.Name != "acme-onboarding" || len(s.Instances) != 2 || len(s.Instances[0].Keys) != 2 {
		t.Fatalf("spec: %+v", s)
	}
	oc := s.Instances[0]
	if oc.Descriptor["xsappname"] != "orders-client-eu10" || oc.Space != "dev" || oc.Plan != "application" {
		t.Errorf("orders-client: %+v", oc)
	}
	if k := oc.Keys[0]; k.Rotate.MaxAgeDuration().Hours() != 720 || !strings.HasSuffix(k.Out, "examples/creds/orders-client.json") {
		t.Errorf("key: %+v", k)
	}
	if s.Instances[1].Keys[0].Format != "env" {
		t.Errorf("billing-ui key format: %+v", s.Instances[1].Keys[0])
	}
	// --var overrides a spec variable.
	s, err = Load("../../examples/onboarding.yaml", map[string]string{"landscape": "us10"})
	if err != nil || s.Instances[0].Descriptor["xsappname"] != "orders-client-us10" {
		t.Errorf("override: %v %v", err, s.Instances[0].Descriptor)
	}
}

// TestSpecProblemsAtOnce checks that one run reports every problem with
// its line and column.
func TestSpecProblemsAtOnce(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"xsappname": 1`), 0o600)
	spec := `apiVersion: xsprov/v2
metadata: {name: "bad name"}
colour: red
defaults: {format: toml, verify: maybe}
spaces:
  - name: dev
    roles:
      - {user: alice, role: owner}
  - name: DEV
instances:
  - name: a
    space: dev
    template: nonexistent
  - name: b
    space: dev
    template: backend-service
    vars: {xsappname: "{{ .missing }}"}
  - name: c
    space: dev
    parameters: {xsappname: "bad app", scopes: [{name: $XSAPPNAME..R}]}
    keys:
      - {name: k, format: xml, out: same.json}
      - {name: k, out: same.json, rotate: {maxAge: soon}}
  - name: c
    space: dev
  - name: d
    parametersFile: bad.json
    tenant: x
  - name: e
    space: dev
    template: minimal
    parameters: {xsappname: e}
keys:
  - {instance: nobody, name: k}
`
	path := filepath.Join(dir, "spec.yaml")
	_, err := Parse(path, []byte(spec), nil)
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	// One run reports every problem: structure (unknown fields, types) and
	// meaning alike, in the order of the file.
	structure := []string{
		`3:1: unknown field "colour"`,
		`4:34: defaults.verify must be true or false`,
		`28:5: unknown field "tenant"`,
	}
	semantic := []string{
		`1:13: apiVersion must be "xsprov/v1", got "xsprov/v2"`,
		`2:18: metadata.name "bad name"`,
		`3:20: defaults.format "toml"`,
		`7:29: role "owner" is not one of`,
		`8:11: space "DEV" is listed twice`,
		`12:15: instance "a": unknown template "nonexistent"`,
		`16:23: instance "b": vars.xsappname:`,
		`19:56: instance "c": descriptor $.scopes[0].name`,
		`19:29: instance "c": descriptor $.xsappname`,
		`21:27: format "xml" is not one of`,
		`22:16: key "k" of instance "c" is listed twice`,
		`22:24: out `,
		`22:52: rotate.maxAge "soon"`,
		`23:11: instance "c" is listed twice in space "dev"`,
		`25:5: instance "d" has no space`,
		`26:21: instance "d": `,
		`27:5: instance "e": give one of template, parameters or parametersFile`,
		`32:16: key "k" refers to instance "nobody"`,
	}
	for _, w := range structure {
		if !strings.Contains(se.Error(), w) {
			t.Errorf("problems lack %q:\n%s", w, se.Error())
		}
	}
	if len(se.Problems) != len(structure)+len(semantic) {
		t.Errorf("%d problems in one run, want %d:\n%s", len(se.Problems), len(structure)+len(semantic), se.Error())
	}
	// With the structure fixed, the same semantic problems.
	spec = strings.Replace(spec, "colour: red\n", "", 1)
	spec = strings.Replace(spec, ", verify: maybe", "", 1)
	spec = strings.Replace(spec, "    tenant: x\n", "", 1)
	_, err = Parse(path, []byte(spec), nil)
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	checkProblems(t, se, semantic)
}

func checkProblems(t *testing.T, se *Error, want []string) {
	t.Helper()
	got := se.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
	if len(se.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(se.Problems), len(want), got)
	}
}

func TestSpecMalformedYAML(t *testing.T) {
	_, err := Parse("s.yaml", []byte("apiVersion: xsprov/v1\ninstances:\n  - name: a\n   space: b\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "s.yaml:2:") || !strings.Contains(err.Error(), "malformed YAML") {
		t.Errorf("err = %v", err)
	}
}

func TestShardsSplitWithoutOverlap(t *testing.T) {
	for n := 1; n <= 5; n++ {
		count := map[string]int{}
		for i := 1; i <= n; i++ {
			for j := 0; j < 200; j++ {
				name := "inst-" + string(rune('a'+j%26)) + strings.Repeat("x", j/26)
				if InShard("dev", name, i, n) {
					count[name]++
				}
			}
		}
		for name, c := range count {
			if c != 1 {
				t.Fatalf("n=%d: %s is in %d shards", n, name, c)
			}
		}
		if len(count) != 200 {
			t.Fatalf("n=%d: %d of 200 instances in some shard", n, len(count))
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	b, _ := os.ReadFile("../../examples/onboarding.yaml")
	f.Add(b)
	f.Add([]byte("apiVersion: xsprov/v1\ninstances: [{name: a, space: b, keys: [{}]}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("keys: [{instance: a}]\ninstances: {}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse("../../examples/fuzz.yaml", b, nil)
		if err == nil && s == nil {
			t.Fatal("no spec and no error")
		}
		var se *Error
		if errors.As(err, &se) {
			for _, p := range se.Problems {
				if p.Msg == "" {
					t.Fatalf("problem without message: %+v", se)
				}
			}
		}
	})
}

// aliasBomb is a small document whose nested aliases expand to 10^levels
// copies of a 1 KB string.
func aliasBomb(where string, levels int) string {
	var b strings.Builder
	b.WriteString("apiVersion: xsprov/v1\nvariables:\n  x0: &a0 " + strings.Repeat("x", 1000) + "\n")
	b.WriteString("instances:\n  - name: i\n    space: dev\n")
	prev := "a0"
	var defs strings.Builder
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&defs, "      l%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				defs.WriteString(", ")
			}
			defs.WriteString("*" + prev)
		}
		defs.WriteString("]\n")
		prev = fmt.Sprintf("a%d", i)
	}
	switch where {
	case "tags":
		fmt.Fprintf(&b, "    parameters:\n      xsappname: i\n%s    tags: *a%d\n", defs.String(), levels)
	default:
		fmt.Fprintf(&b, "    parameters:\n      xsappname: i\n%s      all: *a%d\n", defs.String(), levels)
	}
	return b.String()
}

// TestAliasBombIsBounded: nested aliases are an error, quickly and in
// little memory (a 20 KB spec took 2.7 GB before).
func TestAliasBombIsBounded(t *testing.T) {
	for _, c := range []struct {
		where  string
		levels int
	}{{"tags", 9}, {"parameters", 9}, {"parameters", 5}} {
		where := c.where
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Parse("bomb.yaml", []byte(aliasBomb(where, c.levels)), nil)
		runtime.ReadMemStats(&after)
		var usage interface{ Usage() bool }
		if err == nil || !errors.As(err, &usage) {
			t.Errorf("%s: err = %v, want a usage error", where, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100<<20 {
			t.Errorf("%s: %d MB allocated", where, alloc>>20)
		}
	}
}

// TestSpecInputsAreBounded: a parameters file that never ends is an error,
// and so is a second YAML document.
func TestSpecInputsAreBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err := Parse(filepath.Join(t.TempDir(), "s.yaml"), []byte("apiVersion: xsprov/v1\ninstances:\n  - {name: z, space: dev, parametersFile: /dev/zero}\n"), nil, AllowOutsidePaths())
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("/dev/zero: %v", err)
		}
	}
	_, err := Parse("two.yaml", []byte("apiVersion: xsprov/v1\n---\napiVersion: xsprov/v1\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "3:1: a second YAML document") {
		t.Errorf("two documents: %v", err)
	}
}
