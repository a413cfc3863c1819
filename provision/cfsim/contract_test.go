package cfsim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/config"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// backend is what the contract suite runs against: the simulator, or a real
// Cloud Foundry named by CF_API and credentials in the environment.
type backend struct {
	name       string
	api        string
	opts       []config.Option
	org, space string
	sim        *cfsim.Sim // nil for a real Cloud Foundry
	prefix     string     // for names, unique per run
}

func simBackend(t *testing.T, opts ...cfsim.Option) *backend {
	sim := cfsim.MustNew(opts...)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &backend{name: "sim", api: srv.URL, org: "acme", space: "dev", sim: sim, prefix: "ct",
		opts: []config.Option{config.ClientCredentials(cfsim.CIClientID, cfsim.CIClientSecret)}}
}

// realBackend uses CF_API with CF_CLIENT_ID/CF_CLIENT_SECRET or
// CF_USERNAME/CF_PASSWORD, and CF_ORG/CF_SPACE where xsuaa/application is
// available. It creates and deletes instances named xsprov-ct-*.
func realBackend(t *testing.T) *backend {
	api := os.Getenv("CF_API")
	if api == "" || os.Getenv("XSPROV_CONTRACT_REAL") != "1" {
		t.Skip("set XSPROV_CONTRACT_REAL=1, CF_API, credentials, CF_ORG and CF_SPACE to run the contract suite against a real Cloud Foundry")
	}
	b := &backend{name: "real", api: api, org: os.Getenv("CF_ORG"), space: os.Getenv("CF_SPACE"),
		prefix: fmt.Sprintf("xsprov-ct-%d", time.Now().Unix())}
	switch {
	case os.Getenv("CF_CLIENT_ID") != "":
		b.opts = append(b.opts, config.ClientCredentials(os.Getenv("CF_CLIENT_ID"), os.Getenv("CF_CLIENT_SECRET")))
	default:
		b.opts = append(b.opts, config.UserPassword(os.Getenv("CF_USERNAME"), os.Getenv("CF_PASSWORD")))
	}
	return b
}

func TestContractSim(t *testing.T) {
	// as real SAP BTP (parameters hidden), and as offerings that show them
	t.Run("btp", func(t *testing.T) { runContract(t, simBackend(t, cfsim.WithDefaultPerPage(1))) })
	t.Run("retrievable", func(t *testing.T) {
		runContract(t, simBackend(t, cfsim.WithDefaultPerPage(1), cfsim.WithRetrievableParameters()))
	})
}

func TestContractReal(t *testing.T) {
	runContract(t, realBackend(t))
}

type suite struct {
	*backend
	t         *testing.T
	cf        *client.Client
	spaceGUID string
	planGUID  string
	// retrievable: the offering lets parameters be read back (real BTP's
	// xsuaa does not: 400 120004)
	retrievable bool
}

func runContract(t *testing.T, b *backend) {
	ctx := context.Background()
	cfg, err := config.New(b.api, b.opts...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cf, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{backend: b, t: t, cf: cf}
	t.Run("root and info", s.rootAndInfo)
	t.Run("authentication errors", s.authErrors)
	t.Run("orgs, spaces and pagination", s.orgsAndSpaces)
	t.Run("bad query parameters", s.badQuery)
	t.Run("plans and offerings", s.plans)
	if s.planGUID == "" {
		t.Fatal("no xsuaa/application plan; the remaining subtests need it")
	}
	t.Run("instance and key lifecycle", s.lifecycle)
	t.Run("request body errors", s.bodyErrors)
	t.Run("broker rejects an invalid descriptor", s.brokerRejects)
	t.Run("uaa grants", s.uaaGrants)
	_ = ctx
}

func (s *suite) rootAndInfo(t *testing.T) {
	ctx := context.Background()
	root, err := s.cf.Root.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if root.Links.Uaa.Href == "" || root.Links.Login.Href == "" || root.Links.CloudControllerV3.Href == "" {
		t.Errorf("root links incomplete: %+v", root.Links)
	}
	if root.Links.CloudControllerV3.Meta.Version == "" {
		t.Error("cloud_controller_v3.meta.version missing")
	}
	info, err := s.cf.Root.GetV3(ctx)
	if _, ok := info.Links["info"]; err != nil || !ok {
		t.Errorf("GET /v3: %v %+v", err, info)
	}
	resp := s.raw(t, http.MethodGet, root.Links.Login.Href+"/login", nil, false)
	var login map[string]any
	decode(t, resp, http.StatusOK, &login)
	if _, ok := login["links"].(map[string]any); !ok {
		t.Errorf("login info lacks links: %v", login)
	}
}

func (s *suite) authErrors(t *testing.T) {
	resp := s.raw(t, http.MethodGet, s.api+"/v3/organizations", nil, false)
	expectError(t, resp, 401, 10002, "CF-NotAuthenticated")
	req, _ := http.NewRequest(http.MethodGet, s.api+"/v3/organizations", nil)
	req.Header.Set("Authorization", "bearer not-a-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, resp, 401, 1000, "CF-InvalidAuthToken")
}

func (s *suite) orgsAndSpaces(t *testing.T) {
	ctx := context.Background()
	opts := client.NewOrganizationListOptions()
	opts.PerPage = 1
	orgs, err := s.cf.Organizations.ListAll(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.sim != nil && len(orgs) != 2 {
		t.Errorf("ListAll over per_page=1 pages found %d orgs, want 2", len(orgs))
	}
	sopts := client.NewSpaceListOptions()
	sopts.Names = client.Filter{Values: []string{strings.ToUpper(s.space)}} // names match case-insensitively
	sopts.Include = resource.SpaceIncludeOrganization
	spaces, inc, _, err := s.cf.Spaces.ListIncludeOrganizations(ctx, sopts)
	if err != nil {
		t.Fatal(err)
	}
	for i, sp := range spaces {
		for _, o := range inc {
			if o.GUID == sp.Relationships.Organization.Data.GUID && strings.EqualFold(o.Name, s.org) {
				s.spaceGUID = spaces[i].GUID
			}
		}
	}
	if s.spaceGUID == "" {
		t.Fatalf("space %s of org %s not found with include=organization", s.space, s.org)
	}
	_, err = s.cf.Spaces.Get(ctx, "no-such-space")
	expectCFError(t, err, 10010)
}

func (s *suite) badQuery(t *testing.T) {
	resp := s.raw(t, http.MethodGet, s.api+"/v3/service_instances?bogus=1", nil, true)
	expectError(t, resp, 400, 10005, "CF-BadQueryParameter")
	resp = s.raw(t, http.MethodGet, s.api+"/v3/spaces?per_page=0", nil, true)
	expectError(t, resp, 400, 10005, "CF-BadQueryParameter")
	resp = s.raw(t, http.MethodGet, s.api+"/v3/spaces?per_page=5001", nil, true)
	expectError(t, resp, 400, 10005, "CF-BadQueryParameter")
}

func (s *suite) plans(t *testing.T) {
	ctx := context.Background()
	opts := client.NewServicePlanListOptions()
	opts.Names = client.Filter{Values: []string{"application"}}
	opts.ServiceOfferingNames = client.Filter{Values: []string{"xsuaa"}}
	opts.SpaceGUIDs = client.Filter{Values: []string{s.spaceGUID}}
	opts.Include = resource.ServicePlanIncludeServiceOffering
	plans, offs, _, err := s.cf.ServicePlans.ListIncludeServiceOffering(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || len(offs) != 1 || offs[0].Name != "xsuaa" {
		t.Fatalf("plans %d, offerings %d", len(plans), len(offs))
	}
	s.planGUID = plans[0].GUID
	brokers, err := s.cf.ServiceBrokers.ListAll(ctx, nil)
	if err != nil || len(brokers) == 0 {
		t.Errorf("brokers: %v (%d)", err, len(brokers))
	}
	off, err := s.cf.ServiceOfferings.Get(ctx, offs[0].GUID)
	if err != nil {
		t.Fatalf("offering: %v", err)
	}
	f := off.BrokerCatalog.Features
	if f.InstancesRetrievable != f.BindingsRetrievable || f.PlanUpdateable {
		t.Errorf("offering features %+v: BTP's xsuaa has instances and bindings retrievable alike and plans not updateable", f)
	}
	s.retrievable = f.InstancesRetrievable
}

func (s *suite) create(t *testing.T, name string, params string) (string, string) {
	raw := json.RawMessage(params)
	job, err := s.cf.ServiceInstances.CreateManaged(context.Background(), &resource.ServiceInstanceManagedCreate{
		Type: "managed", Name: name, Parameters: &raw,
		Relationships: resource.ServiceInstanceRelationships{
			Space:       &resource.ToOneRelationship{Data: &resource.Relationship{GUID: s.spaceGUID}},
			ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: s.planGUID}},
		},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return job, s.instanceGUID(t, name)
}

func (s *suite) instanceGUID(t *testing.T, name string) string {
	opts := client.NewServiceInstanceListOptions()
	opts.Names = client.Filter{Values: []string{name}}
	opts.SpaceGUIDs = client.Filter{Values: []string{s.spaceGUID}}
	si, err := s.cf.ServiceInstances.Single(context.Background(), opts)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	return si.GUID
}

func (s *suite) poll(t *testing.T, job string) *resource.Job {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		j, err := s.cf.Jobs.Get(context.Background(), job)
		if err != nil {
			t.Fatalf("job %s: %v", job, err)
		}
		if j.State == resource.JobStateComplete || j.State == resource.JobStateFailed {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", job)
	return nil
}

func (s *suite) lifecycle(t *testing.T) {
	ctx := context.Background()
	name := s.prefix + "-life"
	app := strings.ReplaceAll(name, ".", "_")
	job, guid := s.create(t, name, `{"xsappname":"`+app+`","tenant-mode":"dedicated"}`)
	if j := s.poll(t, job); j.State != resource.JobStateComplete || len(j.Errors) != 0 || j.Operation != "service_instance.create" {
		t.Fatalf("create job: %+v", j)
	}
	defer func() { _, _ = s.cf.ServiceInstances.Delete(ctx, guid) }()
	si, err := s.cf.ServiceInstances.Get(ctx, guid)
	if err != nil || si.LastOperation.Type != "create" || si.LastOperation.State != "succeeded" {
		t.Fatalf("instance: %v %+v", err, si)
	}
	params, err := s.cf.ServiceInstances.GetManagedParameters(ctx, guid)
	switch {
	case s.retrievable && (err != nil || !strings.Contains(string(*params), app)):
		t.Errorf("parameters: %v %s", err, params)
	case !s.retrievable:
		expectCFError(t, err, 120004)
	}
	// The same name again is taken (422 10008, not 60002).
	raw := json.RawMessage(`{"xsappname":"` + app + `"}`)
	_, err = s.cf.ServiceInstances.CreateManaged(ctx, &resource.ServiceInstanceManagedCreate{Type: "managed", Name: name, Parameters: &raw,
		Relationships: resource.ServiceInstanceRelationships{
			Space:       &resource.ToOneRelationship{Data: &resource.Relationship{GUID: s.spaceGUID}},
			ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: s.planGUID}},
		}})
	ce := expectCFError(t, err, 10008)
	if !strings.HasPrefix(ce.Detail, "The service instance name is taken") {
		t.Errorf("name taken detail = %q", ce.Detail)
	}
	// Update parameters through a job.
	upd := json.RawMessage(`{"xsappname":"` + app + `","tenant-mode":"dedicated","scopes":[{"name":"$XSAPPNAME.Read"}]}`)
	ujob, _, err := s.cf.ServiceInstances.UpdateManaged(ctx, guid, &resource.ServiceInstanceManagedUpdate{Parameters: &upd, Tags: []string{}})
	if err != nil || ujob == "" {
		t.Fatalf("update: %v (job %q)", err, ujob)
	}
	if j := s.poll(t, ujob); j.State != resource.JobStateComplete {
		t.Fatalf("update job: %+v", j)
	}
	// Keys: create, duplicate, list, details.
	kjob, _, err := s.cf.ServiceCredentialBindings.Create(ctx, resource.NewServiceCredentialBindingCreateKey(guid, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	kj := s.poll(t, kjob)
	if kj.State != resource.JobStateComplete {
		t.Fatalf("key job: %+v", kj)
	}
	_, _, err = s.cf.ServiceCredentialBindings.Create(ctx, resource.NewServiceCredentialBindingCreateKey(guid, "k1"))
	ce = expectCFError(t, err, 10008)
	if !strings.Contains(ce.Detail, "Key binding names must be unique") {
		t.Errorf("duplicate key detail = %q", ce.Detail)
	}
	kopts := client.NewServiceCredentialBindingListOptions()
	kopts.ServiceInstanceGUIDs = client.Filter{Values: []string{guid}}
	kopts.Type = client.Filter{Values: []string{"key"}}
	keys, err := s.cf.ServiceCredentialBindings.ListAll(ctx, kopts)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v (%d)", err, len(keys))
	}
	det, err := s.cf.ServiceCredentialBindings.GetDetails(ctx, keys[0].GUID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"clientid", "clientsecret", "url", "verificationkey", "xsappname", "identityzone", "tenantmode"} {
		if det.Credentials[f] == nil {
			t.Errorf("credentials lack %s", f)
		}
	}
	s.tokenFromKey(t, det.Credentials)
	// an unknown key: 404 10010 "Service credential binding not found", as
	// the Cloud Controller answers (not 10000), for details and parameters
	_, err = s.cf.ServiceCredentialBindings.GetDetails(ctx, "no-such-key")
	expectCFError(t, err, 10010)
	_, err = s.cf.ServiceCredentialBindings.GetParameters(ctx, "no-such-key")
	expectCFError(t, err, 10010)
	// Delete the instance: the job removes the key first.
	djob, err := s.cf.ServiceInstances.Delete(ctx, guid)
	if err != nil {
		t.Fatal(err)
	}
	if j := s.poll(t, djob); j.State != resource.JobStateComplete || j.Operation != "service_instance.delete" {
		t.Fatalf("delete job: %+v", j)
	}
	_, err = s.cf.ServiceInstances.Get(ctx, guid)
	expectCFError(t, err, 10010)
	_, err = s.cf.ServiceCredentialBindings.Get(ctx, keys[0].GUID)
	expectCFError(t, err, 10010)
	// A token of the deleted key no longer works.
	s.tokenRejected(t, det.Credentials)
	_, err = s.cf.Jobs.Get(ctx, "no-such-job")
	expectCFError(t, err, 10010)
}

// tokenFromKey gets a client-credentials token with the key and verifies it
// with the key's verificationkey.
func (s *suite) tokenFromKey(t *testing.T, creds map[string]any) {
	resp := keyToken(t, creds, creds["clientsecret"].(string))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(t, resp, http.StatusOK, &tok)
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT")
	}
	blk, _ := pem.Decode([]byte(creds["verificationkey"].(string)))
	if blk == nil {
		t.Fatal("verificationkey is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("token does not verify with the key's verificationkey: %v", err)
	}
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(body, &claims)
	if claims["client_id"] != creds["clientid"] || claims["grant_type"] != "client_credentials" {
		t.Errorf("claims: %v", claims)
	}
	if resp := keyToken(t, creds, "wrong"); resp.StatusCode != 401 {
		t.Errorf("a wrong secret got %d, want 401", resp.StatusCode)
	} else {
		var e map[string]string
		decode(t, resp, 401, &e)
		if e["error"] != "invalid_client" {
			t.Errorf("wrong secret error = %v", e)
		}
	}
}

func (s *suite) tokenRejected(t *testing.T, creds map[string]any) {
	if resp := keyToken(t, creds, creds["clientsecret"].(string)); resp.StatusCode != 401 {
		t.Errorf("a deleted key still gets tokens (HTTP %d)", resp.StatusCode)
	}
}

func keyToken(t *testing.T, creds map[string]any, secret string) *http.Response {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, creds["url"].(string)+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(creds["clientid"].(string)), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *suite) bodyErrors(t *testing.T) {
	resp := s.raw(t, http.MethodPost, s.api+"/v3/service_instances", []byte(`{"type":"managed",`), true)
	expectError(t, resp, 400, 1001, "CF-MessageParseError")
	resp = s.raw(t, http.MethodPost, s.api+"/v3/service_instances", []byte(`{"type":"managed","name":"x","bogus":1}`), true)
	expectError(t, resp, 422, 10008, "CF-UnprocessableEntity")
	body := fmt.Sprintf(`{"type":"managed","name":"x","relationships":{"space":{"data":{"guid":"no-such-space"}},"service_plan":{"data":{"guid":%q}}}}`, s.planGUID)
	resp = s.raw(t, http.MethodPost, s.api+"/v3/service_instances", []byte(body), true)
	e := expectError(t, resp, 422, 10008, "CF-UnprocessableEntity")
	if !strings.HasPrefix(e.Detail, "Invalid space") {
		t.Errorf("invalid space detail = %q", e.Detail)
	}
	body = fmt.Sprintf(`{"type":"managed","name":"x","relationships":{"space":{"data":{"guid":%q}},"service_plan":{"data":{"guid":"no-such-plan"}}}}`, s.spaceGUID)
	resp = s.raw(t, http.MethodPost, s.api+"/v3/service_instances", []byte(body), true)
	e = expectError(t, resp, 422, 10008, "CF-UnprocessableEntity")
	if !strings.HasPrefix(e.Detail, "Invalid service plan") {
		t.Errorf("invalid plan detail = %q", e.Detail)
	}
}

func (s *suite) brokerRejects(t *testing.T) {
	name := s.prefix + "-bad"
	job, guid := s.create(t, name, `{"xsappname":"bad name!"}`)
	defer func() { _, _ = s.cf.ServiceInstances.Delete(context.Background(), guid) }()
	j := s.poll(t, job)
	if j.State != resource.JobStateFailed || len(j.Errors) != 1 || j.Errors[0].Code != 10009 || j.Errors[0].Title != "CF-UnableToPerform" {
		t.Fatalf("job = %+v, want FAILED with 10009", j)
	}
	if !strings.HasPrefix(j.Errors[0].Detail, "provision could not be completed: Service broker error: ") {
		t.Errorf("detail = %q", j.Errors[0].Detail)
	}
	si, err := s.cf.ServiceInstances.Get(context.Background(), guid)
	if err != nil || si.LastOperation.State != "failed" {
		t.Errorf("instance after a failed create: %v %+v", err, si)
	}
}

func (s *suite) uaaGrants(t *testing.T) {
	if s.sim == nil {
		t.Skip("needs the seeded admin user")
	}
	root, err := s.cf.Root.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := root.Links.Uaa.Href + "/oauth/token"
	post := func(form url.Values) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("cf", "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	decode(t, post(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"admin-secret"}}), 200, &tok)
	if tok.RefreshToken == "" || !strings.Contains(tok.Scope, "cloud_controller.write") {
		t.Errorf("password grant: %+v", tok)
	}
	var e map[string]string
	decode(t, post(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"nope"}}), 401, &e)
	if e["error"] != "invalid_client" || e["error_description"] != "Bad credentials" {
		t.Errorf("bad password: %v", e)
	}
	var tok2 struct {
		AccessToken string `json:"access_token"`
	}
	decode(t, post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}), 200, &tok2)
	if tok2.AccessToken == "" {
		t.Error("refresh grant gave no access token")
	}
	decode(t, post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}), 401, &e)
	if e["error"] != "invalid_token" {
		t.Errorf("bad refresh token: %v", e)
	}
	// a read-only user cannot write
	var ro struct {
		AccessToken string `json:"access_token"`
	}
	decode(t, post(url.Values{"grant_type": {"password"}, "username": {"auditor"}, "password": {"auditor-secret"}}), 200, &ro)
	req, _ := http.NewRequest(http.MethodPost, s.api+"/v3/service_instances", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "bearer "+ro.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, resp, 403, 10003, "CF-NotAuthorized")
}

// raw sends a request, authenticated with the client's token when auth.
func (s *suite) raw(t *testing.T, method, u string, body []byte, auth bool) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := http.DefaultClient
	if auth {
		hc = s.cf.HTTPAuthClient()
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: not JSON: %s", resp.Request.URL.Path, b)
	}
}

func expectError(t *testing.T, resp *http.Response, status, code int, title string) resource.CloudFoundryError {
	t.Helper()
	var env resource.CloudFoundryErrors
	decode(t, resp, status, &env)
	if len(env.Errors) != 1 || env.Errors[0].Code != code || env.Errors[0].Title != title {
		t.Errorf("%s: errors = %+v, want %d %s", resp.Request.URL.Path, env.Errors, code, title)
		return resource.CloudFoundryError{}
	}
	return env.Errors[0]
}

func expectCFError(t *testing.T, err error, code int) resource.CloudFoundryError {
	t.Helper()
	var ce resource.CloudFoundryError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Errorf("err = %v, want CF error %d", err, code)
	}
	return ce
}
