package cfsim

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type route struct {
	method  string
	pattern string
	segs    []string
	handle  func(*Sim, *request)
	// auth: needs a bearer token; cc: a Cloud Controller route (query
	// validation, flaky gateway); exemptRate: not rate limited.
	auth, cc, exemptRate, tokenEndpoint bool
	query                               []string // allowed query parameters; nil = none
	control                             bool     // the simulator's own control API, not counted
	xsuaa                               bool     // an XSUAA zone endpoint: counted by call, not in the CF total
	list                                bool     // a paginated list
}

var listParams = []string{"page", "per_page", "order_by", "label_selector", "created_ats", "updated_ats", "guids"}

func ccRoute(method, pattern string, h func(*Sim, *request), query ...string) *route {
	return &route{method: method, pattern: pattern, handle: h, auth: true, cc: true, query: query}
}

func listRoute(pattern string, h func(*Sim, *request), query ...string) *route {
	rt := ccRoute(http.MethodGet, pattern, h, append(query, listParams...)...)
	rt.list = true
	return rt
}

var routes = func() []*route {
	rs := []*route{
		{method: http.MethodGet, pattern: "/", handle: (*Sim).root, cc: true, exemptRate: true},
		{method: http.MethodGet, pattern: "/v3", handle: (*Sim).v3root, cc: true, exemptRate: true},
		{method: http.MethodGet, pattern: "/v3/info", handle: (*Sim).info, cc: true},
		{method: http.MethodGet, pattern: "/uaa/login", handle: (*Sim).loginInfo},
		{method: http.MethodGet, pattern: "/uaa/token_keys", handle: (*Sim).tokenKeys},
		{method: "*", pattern: "/uaa/oauth/token", handle: (*Sim).uaaToken, tokenEndpoint: true},
		{method: "*", pattern: "/xsuaa/:zone/oauth/token", handle: (*Sim).zoneToken, tokenEndpoint: true, xsuaa: true},
		{method: http.MethodGet, pattern: "/xsuaa/:zone/token_keys", handle: (*Sim).tokenKeys, xsuaa: true},
		{method: "*", pattern: "/ias/:tenant/oauth2/token", handle: (*Sim).iasToken, tokenEndpoint: true, xsuaa: true},
		{method: http.MethodGet, pattern: "/ias/:tenant/oauth2/certs", handle: (*Sim).tokenKeys, xsuaa: true},
		{method: http.MethodGet, pattern: "/xsuaa/:zone/.well-known/openid-configuration", handle: (*Sim).zoneOpenID, xsuaa: true},

		listRoute("/v3/organizations", (*Sim).listOrgs, "names"),
		ccRoute(http.MethodGet, "/v3/organizations/:guid", (*Sim).getOrg),
		listRoute("/v3/spaces", (*Sim).listSpaces, "names", "organization_guids", "include"),
		ccRoute(http.MethodGet, "/v3/spaces/:guid", (*Sim).getSpace, "include"),
		ccRoute(http.MethodPost, "/v3/spaces", (*Sim).createSpace),
		ccRoute(http.MethodDelete, "/v3/spaces/:guid", (*Sim).deleteSpace),
		listRoute("/v3/users", (*Sim).listUsers, "usernames", "origins", "partial_usernames"),
		listRoute("/v3/roles", (*Sim).listRoles, "types", "user_guids", "space_guids", "organization_guids", "include"),
		ccRoute(http.MethodPost, "/v3/roles", (*Sim).createRole),
		ccRoute(http.MethodGet, "/v3/roles/:guid", (*Sim).getRole, "include"),
		ccRoute(http.MethodDelete, "/v3/roles/:guid", (*Sim).deleteRole),
		listRoute("/v3/service_brokers", (*Sim).listBrokers, "names", "space_guids"),
		listRoute("/v3/service_offerings", (*Sim).listOfferings, "names", "available", "service_broker_guids", "service_broker_names", "space_guids", "organization_guids", "fields[service_broker]"),
		ccRoute(http.MethodGet, "/v3/service_offerings/:guid", (*Sim).getOffering, "fields[service_broker]"),
		listRoute("/v3/service_plans", (*Sim).listPlans, "names", "available", "service_offering_names", "service_offering_guids", "service_broker_names", "service_broker_guids", "space_guids", "organization_guids", "service_instance_guids", "broker_catalog_ids", "include", "fields[service_offering.service_broker]"),
		ccRoute(http.MethodGet, "/v3/service_plans/:guid", (*Sim).getPlan, "include", "fields[service_offering.service_broker]"),
		ccRoute(http.MethodGet, "/v3/service_plans/:guid/visibility", (*Sim).planVisibility),

		listRoute("/v3/service_instances", (*Sim).listInstances, "names", "space_guids", "organization_guids", "service_plan_guids", "service_plan_names", "type", "fields[space]", "fields[space.organization]", "fields[service_plan]", "fields[service_plan.service_offering]", "fields[service_plan.service_offering.service_broker]"),
		ccRoute(http.MethodPost, "/v3/service_instances", (*Sim).createInstance),
		ccRoute(http.MethodGet, "/v3/service_instances/:guid", (*Sim).getInstance, "fields[space]", "fields[space.organization]", "fields[service_plan]", "fields[service_plan.service_offering]", "fields[service_plan.service_offering.service_broker]"),
		ccRoute(http.MethodPatch, "/v3/service_instances/:guid", (*Sim).updateInstance),
		ccRoute(http.MethodDelete, "/v3/service_instances/:guid", (*Sim).deleteInstance, "purge"),
		ccRoute(http.MethodGet, "/v3/service_instances/:guid/parameters", (*Sim).instanceParams),
		ccRoute(http.MethodGet, "/v3/service_instances/:guid/relationships/shared_spaces", (*Sim).sharedSpaces, "fields[space]", "fields[space.organization]"),
		ccRoute(http.MethodGet, "/v3/feature_flags/:name", (*Sim).featureFlag),

		listRoute("/v3/service_credential_bindings", (*Sim).listKeys, "names", "service_instance_guids", "service_instance_names", "type", "app_guids", "app_names", "service_plan_guids", "service_plan_names", "service_offering_guids", "service_offering_names", "include"),
		ccRoute(http.MethodPost, "/v3/service_credential_bindings", (*Sim).createKey),
		ccRoute(http.MethodGet, "/v3/service_credential_bindings/:guid", (*Sim).getKey, "include"),
		ccRoute(http.MethodDelete, "/v3/service_credential_bindings/:guid", (*Sim).deleteKey),
		ccRoute(http.MethodPatch, "/v3/service_credential_bindings/:guid", (*Sim).updateKey),
		ccRoute(http.MethodGet, "/v3/service_credential_bindings/:guid/details", (*Sim).keyDetails),
		ccRoute(http.MethodGet, "/v3/service_credential_bindings/:guid/parameters", (*Sim).keyParams),

		ccRoute(http.MethodGet, "/v3/jobs/:guid", (*Sim).getJob),

		{method: "*", pattern: "/_sim/counts", handle: (*Sim).ctlCounts, control: true},
		{method: http.MethodPut, pattern: "/_sim/delay", handle: (*Sim).ctlDelay, control: true},
		{method: "*", pattern: "/_sim/jobs", handle: (*Sim).ctlJobs, control: true},
		{method: http.MethodPut, pattern: "/_sim/timing", handle: (*Sim).ctlTiming, control: true},
		{method: http.MethodPost, pattern: "/_sim/fail-next", handle: (*Sim).ctlFailNext, control: true},
		{method: http.MethodGet, pattern: "/_sim/ca.pem", handle: (*Sim).ctlCA, control: true},
	}
	for _, r := range rs {
		r.segs = strings.Split(strings.Trim(r.pattern, "/"), "/")
	}
	return rs
}()

// match finds the route for a method and path. A known path with another
// method gets the CC's 404 "Unknown request", as the real router does.
func match(method, path string) (*route, []string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range routes {
		if rt.method != "*" && rt.method != method {
			continue
		}
		if len(rt.segs) != len(segs) {
			continue
		}
		var params []string
		ok := true
		for i, p := range rt.segs {
			if strings.HasPrefix(p, ":") {
				if segs[i] == "" {
					ok = false
					break
				}
				params = append(params, segs[i])
			} else if p != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return rt, params
		}
	}
	return nil, nil
}

func (s *Sim) checkQuery(r *http.Request, rt *route) *apiError {
	q := r.URL.Query()
	var unknown []string
	for k := range q {
		if !slices.Contains(rt.query, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		valid := append([]string(nil), rt.query...)
		sort.Strings(valid)
		return &apiError{Code: 10005, Title: "CF-BadQueryParameter", status: 400,
			Detail: "The query parameter is invalid: Unknown query parameter(s): '" + strings.Join(unknown, "', '") + "'. Valid parameters are: '" + strings.Join(valid, "', '") + "'"}
	}
	if rt.list {
		// the Cloud Controller's own words (app/messages/list_message.rb);
		// it reads numbers as Ruby's to_i does ("5x" is 5, "x" is 0)
		if v := q.Get("page"); v != "" && rubyToI(v) <= 0 {
			return errBadQuery("Page must be a positive integer")
		}
		if v := q.Get("per_page"); v != "" {
			switch n := rubyToI(v); {
			case n <= 0:
				return errBadQuery("Per page must be a positive integer")
			case n > 5000:
				return errBadQuery("Per page must be between 1 and 5000")
			}
		}
		if v := q.Get("order_by"); v != "" {
			valid, col := orderBy(rt.pattern), v
			if col[0] == '+' || col[0] == '-' {
				col = col[1:]
			}
			if !slices.Contains(valid, col) {
				quoted := make([]string, len(valid))
				for i, c := range valid {
					quoted[i] = "'" + c + "'"
				}
				return errBadQuery("Order by can only be: " + strings.Join(quoted, ", "))
			}
		}
	}
	if v := q.Get("type"); v != "" && strings.HasPrefix(rt.pattern, "/v3/service_instances") {
		if v != "managed" && v != "user-provided" {
			return errBadQuery("Type must be one of 'managed', 'user-provided'")
		}
	}
	if v := q.Get("include"); v != "" {
		allowed := map[string][]string{
			"/v3/spaces":                            {"organization"},
			"/v3/roles":                             {"user", "space", "organization"},
			"/v3/roles/:guid":                       {"user", "space", "organization"},
			"/v3/spaces/:guid":                      {"organization"},
			"/v3/service_plans":                     {"service_offering", "space.organization"},
			"/v3/service_plans/:guid":               {"service_offering", "space.organization"},
			"/v3/service_credential_bindings":       {"app", "service_instance"},
			"/v3/service_credential_bindings/:guid": {"app", "service_instance"},
		}[rt.pattern]
		for _, inc := range strings.Split(v, ",") {
			if !slices.Contains(allowed, inc) {
				return errBadQuery("Invalid included resource: '" + inc + "'. Valid included resources are: '" + strings.Join(allowed, "', '") + "'")
			}
		}
	}
	return nil
}

// filter is one comma-separated query filter; empty means "not given".
type filter []string

func queryFilter(q url.Values, name string) filter {
	v, ok := q[name]
	if !ok {
		return nil
	}
	// An empty value filters to nothing, as CC does (names= matches none).
	var out filter
	for _, x := range v {
		out = append(out, strings.Split(x, ",")...)
	}
	if out == nil {
		out = filter{}
	}
	return out
}

func (f filter) has(v string, fold bool) bool {
	if f == nil {
		return true
	}
	for _, x := range f {
		if x == v || (fold && strings.EqualFold(x, v)) {
			return true
		}
	}
	return false
}

// labelSelector supports the CC label_selector forms key, !key, key=v,
// key==v, key!=v, key in (a,b), key notin (a,b), comma = AND.
func labelSelector(sel string, labels map[string]string) bool {
	if sel == "" {
		return true
	}
	for _, term := range splitSelector(sel) {
		term = strings.TrimSpace(term)
		switch {
		case strings.HasPrefix(term, "!"):
			if _, ok := labels[term[1:]]; ok {
				return false
			}
		case strings.Contains(term, "!="):
			k, v, _ := strings.Cut(term, "!=")
			if labels[strings.TrimSpace(k)] == strings.TrimSpace(v) {
				return false
			}
		case strings.Contains(term, " notin "):
			k, set, _ := strings.Cut(term, " notin ")
			if slices.Contains(parseSet(set), labels[strings.TrimSpace(k)]) {
				return false
			}
		case strings.Contains(term, " in "):
			k, set, _ := strings.Cut(term, " in ")
			v, ok := labels[strings.TrimSpace(k)]
			if !ok || !slices.Contains(parseSet(set), v) {
				return false
			}
		case strings.Contains(term, "="):
			k, v, _ := strings.Cut(term, "=")
			v = strings.TrimPrefix(v, "=")
			got, ok := labels[strings.TrimSpace(k)]
			if !ok || got != strings.TrimSpace(v) {
				return false
			}
		default:
			if _, ok := labels[term]; !ok {
				return false
			}
		}
	}
	return true
}

func splitSelector(sel string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range sel {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, sel[start:i])
				start = i + 1
			}
		}
	}
	return append(out, sel[start:])
}

func parseSet(set string) []string {
	set = strings.Trim(strings.TrimSpace(set), "()")
	var out []string
	for _, x := range strings.Split(set, ",") {
		out = append(out, strings.TrimSpace(x))
	}
	return out
}

// page writes a paginated list of already rendered resources.
func (s *Sim) page(req *request, items []any, included map[string]any) {
	q := req.r.URL.Query()
	perPage := s.opts.perPage
	if v := q.Get("per_page"); v != "" {
		perPage = rubyToI(v)
	}
	pageNo := 1
	if v := q.Get("page"); v != "" {
		pageNo = rubyToI(v)
	}
	if items == nil {
		items = []any{} // the Cloud Controller sends [], never null
	}
	total := len(items)
	pages := (total + perPage - 1) / perPage
	if pages < 1 {
		pages = 1
	}
	lo := (pageNo - 1) * perPage
	if lo > total {
		lo = total
	}
	hi := lo + perPage
	if hi > total {
		hi = total
	}
	link := func(p int) map[string]any {
		v := url.Values{}
		for k, vs := range q {
			if k != "page" && k != "per_page" {
				v[k] = vs
			}
		}
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(perPage))
		return map[string]any{"href": req.base + req.r.URL.Path + "?" + v.Encode()}
	}
	var next, prev any
	if pageNo < pages {
		next = link(pageNo + 1)
	}
	if pageNo > 1 { // past the last page too, as the Cloud Controller does
		prev = link(pageNo - 1)
	}
	body := map[string]any{
		"pagination": map[string]any{
			"total_results": total, "total_pages": pages,
			"first": link(1), "last": link(pages), "next": next, "previous": prev,
		},
		"resources": items[lo:hi],
	}
	if included != nil && !s.opts.noIncluded {
		body["included"] = included
	}
	writeJSON(req.w, http.StatusOK, body)
}

// rubyToI reads a number as Ruby's String#to_i: the leading digits, 0
// without any.
func rubyToI(s string) int {
	n, i := 0, 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<30 {
			break
		}
	}
	if neg {
		return -n
	}
	return n
}

// orderBy are the columns a list can be ordered by: created_at and
// updated_at everywhere, name where resources have one.
func orderBy(pattern string) []string {
	if pattern == "/v3/roles" || pattern == "/v3/jobs" {
		return []string{"created_at", "updated_at"}
	}
	return []string{"created_at", "updated_at", "name"}
}
