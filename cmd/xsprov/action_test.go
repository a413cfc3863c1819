package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// TestGitHubActionRunStep runs the "Run xsprov" step of the composite action
// (.github/actions/xsprov/action.yml) with bash, as the runner would, against
// the simulator: its outputs carry the exit code and the non-secret results,
// and no secret reaches $GITHUB_OUTPUT or stdout.
func TestGitHubActionRunStep(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	raw, err := os.ReadFile("../../.github/actions/xsprov/action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Runs struct {
			Steps []struct {
				ID  string `yaml:"id"`
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(raw, &action); err != nil {
		t.Fatal(err)
	}
	var script string
	for _, s := range action.Runs.Steps {
		if s.ID == "run" {
			script = s.Run
		}
	}
	if script == "" {
		t.Fatal("action.yml has no step with id run")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "xsprov"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := httptest.NewServer(cfsim.MustNew())
	defer srv.Close()
	work, temp := t.TempDir(), t.TempDir()
	outputs := filepath.Join(temp, "github-output")
	run := func(command string) (int, string) {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = work
		cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + temp, "RUNNER_TEMP=" + temp, "GITHUB_OUTPUT=" + outputs,
			"GITHUB_ACTIONS=true", "CF_API=" + srv.URL, "CF_CLIENT_ID=" + cfsim.CIClientID, "CF_CLIENT_SECRET=" + cfsim.CIClientSecret,
			"CF_ORG=acme", "CF_SPACE=dev", "XSPROV_COMMAND=" + command}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := run("up act-a --xsappname act-a --github-output --json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	got, _ := os.ReadFile(outputs)
	for _, want := range []string{"exit-code=0\n", "client-id=sb-act-a!t1001\n", "credentials-file="} {
		if !strings.Contains(string(got), want) {
			t.Errorf("$GITHUB_OUTPUT lacks %q:\n%s", want, got)
		}
	}
	if _, err := exec.LookPath("jq"); err == nil && !strings.Contains(string(got), "result<<XSPROV_EOF\n{") {
		t.Errorf("$GITHUB_OUTPUT lacks the JSON result:\n%s", got)
	}
	creds, err := os.ReadFile(filepath.Join(work, "act-a-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	secret := between(string(creds), `"clientsecret": "`, `"`)
	if secret == "" {
		t.Fatalf("no secret in the credentials file: %s", creds)
	}
	if strings.Contains(string(got), secret) {
		t.Errorf("the client secret reached $GITHUB_OUTPUT")
	}
	if strings.Contains(strings.ReplaceAll(out, "::add-mask::"+secret, ""), secret) {
		t.Errorf("the client secret was printed other than in its mask")
	}
	// a failing command: its code is the step's and the output's
	code, _ = run("status no-such-instance")
	got, _ = os.ReadFile(outputs)
	if code != 1 || !strings.Contains(string(got), "exit-code=1\n") {
		t.Errorf("failing command: exit %d, outputs:\n%s", code, got)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	j := strings.Index(s, to)
	if j < 0 {
		return ""
	}
	return s[:j]
}
