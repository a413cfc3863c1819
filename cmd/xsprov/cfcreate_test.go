package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// cfCreate is the script command "cfcreate INSTANCE PARAMS-FILE [KEY]": it
// creates an instance in acme/dev the way `cf create-service xsuaa
// application INSTANCE -c PARAMS-FILE` does (no xsprov record, no labels),
// and a key like `cf create-service-key`, straight over the v3 API.
func cfCreate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: cfcreate INSTANCE PARAMS-FILE [KEY]")
	}
	call, first := cfAPI(ts)
	space := first(call("GET", "/v3/spaces?names=dev&organization_guids="+first(call("GET", "/v3/organizations?names=acme", "")), ""))
	plan := first(call("GET", "/v3/service_plans?names=application&service_offering_names=xsuaa", ""))
	params := ts.ReadFile(args[1])
	call("POST", "/v3/service_instances", `{"type":"managed","name":"`+args[0]+`","parameters":`+params+
		`,"relationships":{"space":{"data":{"guid":"`+space+`"}},"service_plan":{"data":{"guid":"`+plan+`"}}}}`)
	if len(args) == 3 {
		inst := first(call("GET", "/v3/service_instances?names="+args[0]+"&space_guids="+space, ""))
		call("POST", "/v3/service_credential_bindings", `{"type":"key","name":"`+args[2]+`","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
	}
}

// cfKeys is the script command "cfkeys INSTANCE N": N more keys of the
// instance in acme/dev (extra-1 … extra-N), as `cf create-service-key` makes
// them.
func cfKeys(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: cfkeys INSTANCE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	call, first := cfAPI(ts)
	inst := first(call("GET", "/v3/service_instances?names="+args[0], ""))
	for i := 1; i <= n; i++ {
		call("POST", "/v3/service_credential_bindings", `{"type":"key","name":"extra-`+strconv.Itoa(i)+`","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
	}
}

// cfAPI logs in to the script's simulator as the CI client and returns a
// caller of the v3 API and a reader of a list's first GUID.
func cfAPI(ts *testscript.TestScript) (func(method, path, body string) map[string]any, func(map[string]any) string) {
	base := ts.Getenv("CF_API")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cfsim.CIClientID}, "client_secret": {cfsim.CIClientSecret}}
	resp, err := http.PostForm(base+"/uaa/oauth/token", form)
	ts.Check(err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	ts.Check(json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	call := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		ts.Check(err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			ts.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	first := func(m map[string]any) string {
		res, _ := m["resources"].([]any)
		if len(res) == 0 {
			ts.Fatalf("nothing found")
		}
		return res[0].(map[string]any)["guid"].(string)
	}
	return call, first
}
