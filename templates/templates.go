// Package templates holds xsprov's built-in xs-security descriptors and
// renders them, or a user's template file, with variables.
//
// Templates use Go text/template syntax ({{ .xsappname }}). Variable values
// are inserted JSON-escaped, so a value cannot break the descriptor's JSON;
// the descriptor's own placeholders ($XSAPPNAME, $ACCEPT_GRANTED_SCOPES, …)
// are plain text to text/template and pass through untouched.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/xsprov/xsprov/provision/infile"
	"gopkg.in/yaml.v3"
)

//go:embed builtin
var builtinFS embed.FS

// Var is a template variable.
type Var struct {
	Name        string `yaml:"name" json:"name"`
	Default     string `yaml:"default" json:"default,omitempty"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// Template is a descriptor template.
type Template struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description"`
	// Offering is the service offering the template's parameters are for
	// (xsuaa when not said).
	Offering string `yaml:"offering" json:"offering"`
	Vars     []Var  `yaml:"vars" json:"vars"`
	// Source is the template text; Path the file of a user template.
	Source string `yaml:"-" json:"-"`
	Path   string `yaml:"-" json:"path,omitempty"`
}

// List returns the built-in templates, by name.
func List() []Template {
	builtinOnce.Do(loadBuiltins)
	return append([]Template(nil), builtins...)
}

var (
	builtinOnce sync.Once
	builtins    []Template
)

func loadBuiltins() {
	b, err := builtinFS.ReadFile("builtin/index.yaml")
	if err != nil {
		panic(err) // embedded at build time
	}
	var ts []Template
	if err := yaml.Unmarshal(b, &ts); err != nil {
		panic(fmt.Sprintf("templates/builtin/index.yaml: %v", err))
	}
	for i := range ts {
		src, err := builtinFS.ReadFile("builtin/" + ts[i].Name + ".json.tmpl")
		if err != nil {
			panic(err)
		}
		ts[i].Source = string(src)
		if ts[i].Offering == "" {
			ts[i].Offering = "xsuaa"
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	builtins = ts
}

// Names lists the built-in template names.
func Names() []string {
	var out []string
	for _, t := range List() {
		out = append(out, t.Name)
	}
	return out
}

// Error is a problem with a template or its variables (bad input).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Load returns a built-in template by name, or reads a user template from a
// file (anything with a path separator or a .json/.tmpl suffix is a path).
// A user template declares no defaults: every variable it uses is required.
func Load(nameOrPath string) (Template, error) {
	for _, t := range List() {
		if t.Name == nameOrPath {
			return t, nil
		}
	}
	if !strings.ContainsAny(nameOrPath, `/\`) && !strings.HasSuffix(nameOrPath, ".json") && !strings.HasSuffix(nameOrPath, ".tmpl") {
		return Template{}, &Error{Msg: fmt.Sprintf("unknown template %q (built-in: %s; a user template is a file path)", nameOrPath, strings.Join(Names(), ", "))}
	}
	b, err := infile.Read(nameOrPath, infile.Document)
	if err != nil {
		return Template{}, &Error{Msg: fmt.Sprintf("read template: %v", err)}
	}
	t := Template{Name: filepath.Base(nameOrPath), Description: "user template", Source: string(b), Path: nameOrPath}
	refs, err := referenced(t.Name, t.Source)
	if err != nil {
		return Template{}, err
	}
	for _, r := range refs {
		t.Vars = append(t.Vars, Var{Name: r})
	}
	return t, nil
}

// referenced lists the variables a template uses, in order of appearance.
func referenced(name, src string) ([]string, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("template %s: %v", name, err)}
	}
	seen := map[string]bool{}
	var out []string
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.FieldNode:
			if len(x.Ident) > 0 && !seen[x.Ident[0]] {
				seen[x.Ident[0]] = true
				out = append(out, x.Ident[0])
			}
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		}
	}
	walk(tmpl.Tree.Root)
	return out, nil
}

// Render fills the template with vars (over the defaults) and returns the
// descriptor JSON, indented. Missing variables are one error naming them all.
func (t Template) Render(vars map[string]string) ([]byte, error) {
	refs, err := referenced(t.Name, t.Source)
	if err != nil {
		return nil, err
	}
	values := map[string]any{}
	for _, v := range t.Vars {
		if v.Default != "" {
			values[v.Name] = v.Default
		}
	}
	for k, v := range vars {
		values[k] = v
	}
	var missing []string
	for _, r := range refs {
		if _, ok := values[r]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, &Error{Msg: fmt.Sprintf("template %s: missing variable(s) %s (set them with --var NAME=VALUE, --vars FILE or XSPROV_VAR_NAME)", t.Name, strings.Join(missing, ", "))}
	}
	for k, v := range values {
		values[k] = jsonEscape(v.(string))
	}
	tmpl, err := template.New(t.Name).Option("missingkey=error").Parse(t.Source)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("template %s: %v", t.Name, err)}
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, values); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("template %s: %v", t.Name, err)}
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out.Bytes(), "", "  "); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("template %s does not render to JSON: %v", t.Name, err)}
	}
	pretty.WriteByte('\n')
	return pretty.Bytes(), nil
}

// jsonEscape escapes a value for a JSON string context; numbers and the like
// are unchanged by it.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// Vars merges variables: environment XSPROV_VAR_<NAME> (lowest), a YAML
// file, then --var NAME=VALUE flags (highest).
func Vars(flags []string, file string, environ []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "XSPROV_VAR_") && len(k) > len("XSPROV_VAR_") {
			out[strings.TrimPrefix(k, "XSPROV_VAR_")] = v
		}
	}
	if file != "" {
		b, err := infile.Read(file, infile.Small)
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("--vars: %v", err)}
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, &Error{Msg: fmt.Sprintf("--vars %s: %v", file, err)}
		}
		for k, v := range m {
			switch x := v.(type) {
			case string, int, float64, bool:
				out[k] = fmt.Sprint(x)
			default:
				return nil, &Error{Msg: fmt.Sprintf("--vars %s: variable %q must be a scalar", file, k)}
			}
		}
	}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, &Error{Msg: fmt.Sprintf("--var %q: want NAME=VALUE", f)}
		}
		out[k] = v
	}
	return out, nil
}

// Values are template variables and where they came from.
type Values struct {
	// Given by --var and --vars: a name the template does not know is an
	// error.
	Given map[string]string
	// Env are XSPROV_VAR_<NAME> variables: their names match the template's
	// variables regardless of case (environments spell them in capitals),
	// and names a template does not know are ignored.
	Env map[string]string
}

// ReadValues reads the variables of --var flags, a --vars file and the
// environment.
func ReadValues(flags []string, file string, environ []string) (Values, error) {
	given, err := Vars(flags, file, nil)
	if err != nil {
		return Values{}, err
	}
	env, _ := Vars(nil, "", environ)
	return Values{Given: given, Env: env}, nil
}

// Has tells whether the variable name was given (in any case from the
// environment).
func (v Values) Has(name string) bool {
	if _, ok := v.Given[name]; ok {
		return true
	}
	for k := range v.Env {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// Names are the template's variables: declared and used.
func (t Template) Names() ([]string, error) {
	refs, err := referenced(t.Name, t.Source)
	if err != nil {
		return nil, err
	}
	names := slices.Clone(refs)
	for _, v := range t.Vars {
		if !slices.Contains(names, v.Name) {
			names = append(names, v.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// RenderValues renders with v: environment variables matched to the
// template's names regardless of case, given ones over them; a given name
// the template does not know is an error that lists the ones it knows.
func (t Template) RenderValues(v Values) ([]byte, error) {
	names, err := t.Names()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for k, val := range v.Env {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				vars[n] = val
			}
		}
	}
	var unknown []string
	for k, val := range v.Given {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
			continue
		}
		vars[k] = val
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, &Error{Msg: fmt.Sprintf("template %s has no variable %s; its variables are %s", t.Name, strings.Join(unknown, ", "), strings.Join(names, ", "))}
	}
	return t.Render(vars)
}
