package cfsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// BenchmarkListInstancesByName measures GET /v3/service_instances?names=…
// over real loopback HTTP with keep-alive, from parallel clients, against a
// world of 200 instances. The target is ≥5,000 requests/s on 2 cores.
func BenchmarkListInstancesByName(b *testing.B) {
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := newRaw(b, sim)
	space := c.guid("/v3/spaces", "names=dev")
	plan := c.guid("/v3/service_plans", "names=application")
	for i := 0; i < 200; i++ {
		n := "inst-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		c.json(http.MethodPost, "/v3/service_instances", createBody(n, space, plan, `{"xsappname":"`+n+`"}`))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr}
	u := srv.URL + "/v3/service_instances?names=inst-xa&space_guids=" + url.QueryEscape(space)
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Authorization", "bearer "+c.token)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
