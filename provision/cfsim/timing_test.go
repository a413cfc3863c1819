package cfsim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// TestTimingModel checks when jobs change state under each broker mode, with
// a fake clock: a synchronous broker ends with its own time; an asynchronous
// one only at a CC poll of the broker (right after the 202, then every CC
// poll interval plus the worker's delay), with the job's updated_at unchanged
// while POLLING.
func TestTimingModel(t *testing.T) {
	type probe struct {
		at      time.Duration // since the create
		job, op string
	}
	for _, tc := range []struct {
		name   string
		opts   []cfsim.Option
		params string
		probes []probe
	}{
		{"sync broker", []cfsim.Option{cfsim.WithBrokerDelay(10 * time.Second)}, `{"xsappname":"a"}`, []probe{
			{0, "PROCESSING", "create initial"}, {9999 * time.Millisecond, "PROCESSING", "create initial"},
			{10 * time.Second, "COMPLETE", "create succeeded"}}},
		{"async broker, CC polls every 60 s", []cfsim.Option{cfsim.WithBrokerDelay(20 * time.Second), cfsim.WithAsyncBroker()}, `{"xsappname":"a"}`, []probe{
			{0, "POLLING", "create in progress"}, {20 * time.Second, "POLLING", "create in progress"},
			{59 * time.Second, "POLLING", "create in progress"}, {60 * time.Second, "COMPLETE", "create succeeded"}}},
		{"async broker, 5 s cadence, broker needs 11 s", []cfsim.Option{cfsim.WithBrokerDelay(11 * time.Second), cfsim.WithAsyncBroker(), cfsim.WithCCPollInterval(5 * time.Second)}, `{"xsappname":"a"}`, []probe{
			{10 * time.Second, "POLLING", "create in progress"}, {14 * time.Second, "POLLING", "create in progress"},
			{15 * time.Second, "COMPLETE", "create succeeded"}}},
		{"async broker done at the first poll", []cfsim.Option{cfsim.WithAsyncBroker()}, `{"xsappname":"a"}`, []probe{
			{0, "COMPLETE", "create succeeded"}}},
		{"xsenableasyncservice on a synchronous broker", []cfsim.Option{cfsim.WithBrokerDelay(2 * time.Second), cfsim.WithCCPollInterval(30 * time.Second)}, `{"xsappname":"a","xsenableasyncservice":"true"}`, []probe{
			{0, "POLLING", "create in progress"}, {29 * time.Second, "POLLING", "create in progress"},
			{30 * time.Second, "COMPLETE", "create succeeded"}}},
		{"worker delay", []cfsim.Option{cfsim.WithBrokerDelay(time.Second), cfsim.WithAsyncBroker(), cfsim.WithCCPollInterval(5 * time.Second), cfsim.WithWorkerDelay(time.Second)}, `{"xsappname":"a"}`, []probe{
			{4999 * time.Millisecond, "POLLING", "create in progress"}, {6 * time.Second, "COMPLETE", "create succeeded"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk, space, plan := setup(t, tc.opts...)
			start := clk.Now()
			code, _, h := c.json(http.MethodPost, "/v3/service_instances", createBody("i1", space, plan, tc.params))
			if code != 202 {
				t.Fatalf("create: %d", code)
			}
			jobPath := strings.TrimPrefix(h.Get("Location"), "http://sim.test")
			inst := c.guid("/v3/service_instances", "names=i1")
			var pollingSince any
			for _, p := range tc.probes {
				clk.Advance(start.Add(p.at).Sub(clk.Now()))
				_, j, _ := c.json(http.MethodGet, jobPath, "")
				_, i, _ := c.json(http.MethodGet, "/v3/service_instances/"+inst, "")
				if j["state"] != p.job || lastOp(i) != p.op {
					t.Errorf("at +%v: job %v / instance %s, want %s / %s", p.at, j["state"], lastOp(i), p.job, p.op)
				}
				if j["state"] == "POLLING" {
					if pollingSince == nil {
						pollingSince = j["updated_at"]
					} else if j["updated_at"] != pollingSince {
						t.Errorf("at +%v: updated_at moved while POLLING: %v, was %v", p.at, j["updated_at"], pollingSince)
					}
				}
			}
		})
	}
}

// TestTimingProfileBTP: the BTP profile as recorded: a create is POLLING at
// +2 s and +4 s and COMPLETE by +6 s; a key is COMPLETE at the first check.
func TestTimingProfileBTP(t *testing.T) {
	btp, err := cfsim.LookupProfile("btp")
	if err != nil {
		t.Fatal(err)
	}
	c, clk, space, plan := setup(t, cfsim.WithProfile(btp))
	_, _, h := c.json(http.MethodPost, "/v3/service_instances", createBody("i1", space, plan, `{"xsappname":"a"}`))
	jobPath := strings.TrimPrefix(h.Get("Location"), "http://sim.test")
	for _, p := range []struct {
		after time.Duration
		want  string
	}{{2 * time.Second, "POLLING"}, {2 * time.Second, "POLLING"}, {2 * time.Second, "COMPLETE"}} {
		clk.Advance(p.after)
		if _, j, _ := c.json(http.MethodGet, jobPath, ""); j["state"] != p.want {
			t.Fatalf("job %v, want %s", j["state"], p.want)
		}
	}
	inst := c.guid("/v3/service_instances", "names=i1")
	_, _, h = c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"k","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
	if _, j, _ := c.json(http.MethodGet, strings.TrimPrefix(h.Get("Location"), "http://sim.test"), ""); j["state"] != "COMPLETE" {
		t.Errorf("key job %v, want COMPLETE at the first check", j["state"])
	}
	if _, err := cfsim.LookupProfile("nope"); err == nil || !strings.Contains(err.Error(), "btp") {
		t.Errorf("unknown profile: %v", err)
	}
}
