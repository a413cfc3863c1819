package cfsim

import (
	"net/http"
)

func (s *Sim) root(req *request) {
	b := req.base
	writeJSON(req.w, http.StatusOK, map[string]any{"links": map[string]any{
		"self":                href(b),
		"cloud_controller_v3": map[string]any{"href": b + "/v3", "meta": map[string]any{"version": APIVersion}},
		"network_policy_v0":   href(b + "/networking/v0/external"),
		"network_policy_v1":   href(b + "/networking/v1/external"),
		"login":               href(b + "/uaa"),
		"uaa":                 href(b + "/uaa"),
		"credhub":             nil,
		"routing":             nil,
		"logging":             nil,
		"log_cache":           nil,
		"log_stream":          nil,
		"app_ssh":             map[string]any{"href": "ssh.sim.local:2222", "meta": map[string]any{"host_key_fingerprint": "sim", "oauth_client": "ssh-proxy"}},
	}})
}

func (s *Sim) v3root(req *request) {
	b := req.base + "/v3"
	links := map[string]any{"self": href(b)}
	// the links the Cloud Controller lists, whether the simulator serves
	// the resource or not
	for _, r := range []string{"app_usage_events", "apps", "audit_events", "buildpacks", "builds", "deployments", "domains",
		"droplets", "environment_variable_groups", "feature_flags", "info", "isolation_segments", "organizations",
		"organization_quotas", "packages", "processes", "resource_matches", "roles", "routes", "security_groups",
		"service_brokers", "service_instances", "service_credential_bindings", "service_offerings", "service_plans",
		"service_route_bindings", "service_usage_events", "sidecars", "spaces", "space_quotas", "stacks", "tasks", "users"} {
		links[r] = href(b + "/" + r)
	}
	writeJSON(req.w, http.StatusOK, map[string]any{"links": links})
}

func (s *Sim) info(req *request) {
	writeJSON(req.w, http.StatusOK, map[string]any{
		"build": "cfsim", "cli_version": map[string]any{"minimum": "8.0.0", "recommended": "8.17.0"},
		"custom": map[string]any{}, "description": "xsprov Cloud Foundry simulator", "name": "cfsim", "version": 180,
		"osbapi_version": "2.15",
		"rate_limits":    map[string]any{"enabled": s.opts.rateLimit > 0, "general_limit": s.opts.rateLimit, "reset_interval_in_minutes": int(s.opts.rateWindow.Minutes())},
		"links":          map[string]any{"self": href(req.base + "/v3/info"), "support": href("https://github.com/xsprov/xsprov")},
	})
}
