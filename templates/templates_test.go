package templates

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/xssec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestBuiltinsRenderWithDefaults pins every built-in template rendered with
// its defaults, and checks that each is a valid descriptor.
func TestBuiltinsRenderWithDefaults(t *testing.T) {
	want := []string{"approuter", "backend-service", "ias-api", "ias-app", "ias-xsuaa", "minimal", "multitenant", "x509"}
	if got := strings.Join(Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("built-ins = %s, want %s", got, strings.Join(want, ","))
	}
	for _, tm := range List() {
		t.Run(tm.Name, func(t *testing.T) {
			if tm.Description == "" || len(tm.Vars) == 0 {
				t.Errorf("%s lacks a description or variables", tm.Name)
			}
			out, err := tm.Render(nil)
			if err != nil {
				t.Fatal(err)
			}
			// each with the rules of its offering
			d, ps := xssec.Parse(out)
			if ps != nil {
				t.Fatalf("rendered %s is not JSON: %v", tm.Name, ps)
			}
			prof := offering.For(tm.Offering)
			if prof.Validate == nil || prof.Name != tm.Offering {
				t.Fatalf("%s: offering %q has no rules", tm.Name, tm.Offering)
			}
			if ps := prof.Validate(d).Errors(); len(ps) > 0 {
				t.Errorf("rendered %s has problems: %v", tm.Name, ps)
			}
			path := filepath.Join("testdata", tm.Name+".golden.json")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(golden) != string(out) {
				t.Errorf("%s rendered:\n%s\nwant:\n%s", tm.Name, out, golden)
			}
		})
	}
}

func TestRenderVariables(t *testing.T) {
	tm, err := Load("backend-service")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(map[string]string{"xsappname": "orders-client", "provider_app": "orders", "provider_scope": "Write"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"xsappname": "orders-client"`, `"$XSAPPNAME(application,orders).Write"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered lacks %s:\n%s", want, out)
		}
	}
	// A value cannot break out of its JSON string.
	out, err = tm.Render(map[string]string{"xsappname": `evil","tenant-mode":"shared`})
	if err != nil {
		t.Fatal(err)
	}
	d, ps := xssec.Parse(out)
	if ps != nil || d["tenant-mode"] != "dedicated" {
		t.Errorf("injection changed the descriptor: %s", out)
	}
}

func TestMissingVariableNamed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.json")
	_ = os.WriteFile(path, []byte(`{"xsappname":"{{ .app }}","tenant-mode":"{{ .mode }}","scopes":[{"name":"$XSAPPNAME.Read"}],"foreign-scope-references":["$ACCEPT_GRANTED_SCOPES"]}`), 0o600)
	tm, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Vars) != 2 || tm.Vars[0].Name != "app" || tm.Vars[1].Name != "mode" {
		t.Errorf("user template vars = %+v", tm.Vars)
	}
	_, err = tm.Render(map[string]string{"app": "a"})
	if err == nil || !strings.Contains(err.Error(), "missing variable(s) mode") {
		t.Errorf("err = %v, want it to name mode", err)
	}
	out, err := tm.Render(map[string]string{"app": "a", "mode": "shared"})
	if err != nil || !strings.Contains(string(out), `"$XSAPPNAME.Read"`) || !strings.Contains(string(out), `"$ACCEPT_GRANTED_SCOPES"`) {
		t.Errorf("placeholders not passed through: %v\n%s", err, out)
	}
	if _, err := Load("nonexistent"); err == nil || !strings.Contains(err.Error(), "built-in: approuter") {
		t.Errorf("unknown template: %v", err)
	}
	_ = os.WriteFile(path, []byte(`{"xsappname": {{ .app }`), 0o600)
	if _, err := Load(path); err == nil {
		t.Error("a template that does not parse was accepted")
	}
}

func TestVarsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vars.yaml")
	_ = os.WriteFile(file, []byte("a: from-file\nb: from-file\nn: 3600\n"), 0o600)
	v, err := Vars([]string{"a=from-flag"}, file, []string{"XSPROV_VAR_a=env", "XSPROV_VAR_c=env", "OTHER=x"})
	if err != nil {
		t.Fatal(err)
	}
	if v["a"] != "from-flag" || v["b"] != "from-file" || v["c"] != "env" || v["n"] != "3600" || len(v) != 4 {
		t.Errorf("vars = %v", v)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := Vars([]string{bad}, "", nil); err == nil {
			t.Errorf("--var %q accepted", bad)
		}
	}
	_ = os.WriteFile(file, []byte("a: [1, 2]\n"), 0o600)
	if _, err := Vars(nil, file, nil); err == nil {
		t.Error("a list value was accepted")
	}
}

// FuzzRender renders arbitrary template sources and values: errors are
// fine, panics and output that is not JSON are not.
func FuzzRender(f *testing.F) {
	for _, t := range List() {
		f.Add(t.Source, "value")
	}
	f.Add(`{"a": "{{ .x }}", "b": {{ .y }}}`, `"}`)
	f.Add(`{{ range .x }}{{ end }}`, "")
	f.Add(`{{ template "x" }}`, "")
	f.Fuzz(func(t *testing.T, src, val string) {
		tm := Template{Name: "fuzz", Source: src}
		refs, err := referenced("fuzz", src)
		if err != nil {
			return
		}
		vars := map[string]string{}
		for _, r := range refs {
			vars[r] = val
		}
		out, err := tm.Render(vars)
		if err == nil && !json.Valid(out) {
			t.Fatalf("rendered output is not JSON: %q", out)
		}
	})
}

// TestRenderValues: an unknown --var is an error that lists the template's
// variables; XSPROV_VAR_* names match regardless of case, and environment
// names the template does not know are ignored.
func TestRenderValues(t *testing.T) {
	tm, err := Load("backend-service")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.RenderValues(Values{Given: map[string]string{"xsapname": "typo"}})
	if err == nil || !strings.Contains(err.Error(), "has no variable xsapname; its variables are") || !strings.Contains(err.Error(), "xsappname") {
		t.Errorf("unknown --var: %v", err)
	}
	vals, err := ReadValues(nil, "", []string{"XSPROV_VAR_XSAPPNAME=from-env", "XSPROV_VAR_PROVIDER_APP=orders", "XSPROV_VAR_UNRELATED=x"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.RenderValues(vals)
	if err != nil || !strings.Contains(string(out), `"xsappname": "from-env"`) || !strings.Contains(string(out), "$XSAPPNAME(application,orders)") {
		t.Errorf("environment in capitals: %v\n%s", err, out)
	}
}
