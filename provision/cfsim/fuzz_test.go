package cfsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// FuzzHandler sends arbitrary requests, authenticated, to the simulator. It
// must never answer 500 (a recovered panic) and never break its state: every
// key's instance exists and the state still serialises.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, path, body string }{
		{"GET", "/v3/service_instances?names=a,b&per_page=2&page=1", ""},
		{"GET", "/v3/spaces?include=organization&names=dev", ""},
		{"GET", "/v3/service_plans?include=service_offering&space_guids=x", ""},
		{"POST", "/v3/service_instances", `{"type":"managed","name":"a","relationships":{"space":{"data":{"guid":"s"}},"service_plan":{"data":{"guid":"p"}}},"parameters":{"xsappname":"a"}}`},
		{"POST", "/v3/service_instances", `{"type":"managed","name":"a","parameters":[1,2]}`},
		{"PATCH", "/v3/service_instances/x", `{"parameters":{"xsappname":"b"},"metadata":{"labels":{"k":null}}}`},
		{"POST", "/v3/service_credential_bindings", `{"type":"key","name":"k","relationships":{"service_instance":{"data":{"guid":"i"}}}}`},
		{"DELETE", "/v3/service_instances/x?purge=true", ""},
		{"GET", "/v3/service_instances?label_selector=a in (x,y),!b", ""},
		{"POST", "/uaa/oauth/token", "grant_type=password&username=admin&password=x"},
		{"GET", "/v3/jobs/%00", ""},
		{"POST", "/v3/service_instances", `{"type":"managed","name":"a","relationships":null}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	sim := cfsim.MustNew(cfsim.WithDeterministicIDs())
	c := newRaw(f, sim)
	space := c.guid("/v3/spaces", "names=dev")
	plan := c.guid("/v3/service_plans", "names=application")
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		// Let the fuzzer reach valid references too.
		body = strings.ReplaceAll(strings.ReplaceAll(body, `"s"`, `"`+space+`"`), `"p"`, `"`+plan+`"`)
		req, err := http.NewRequest(method, "http://sim.test"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: HTTP %d %s", method, path, body, rec.Code, rec.Body)
		}
		st := sim.Snapshot()
		for _, k := range st.Keys {
			if _, ok := st.Instances[k.InstanceGUID]; !ok {
				t.Fatalf("key %s outlives its instance", k.GUID)
			}
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("state does not serialise: %v", err)
		}
	})
}
