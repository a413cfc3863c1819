package cfsim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// State is the whole simulated world. It is what --state persists as JSON, so
// that separate processes see the same landscape.
type State struct {
	Seq       int64                `json:"seq"`
	AppSeq    int                  `json:"app_seq"`
	Orgs      map[string]*Org      `json:"orgs"`
	Spaces    map[string]*Space    `json:"spaces"`
	Brokers   map[string]*Broker   `json:"brokers"`
	Offerings map[string]*Offering `json:"offerings"`
	Plans     map[string]*Plan     `json:"plans"`
	Instances map[string]*Instance `json:"instances"`
	Keys      map[string]*Key      `json:"keys"`
	Jobs      map[string]*Job      `json:"jobs"`
	Users     []*User              `json:"users"`
	Roles     map[string]*Role     `json:"roles"`
	Clients   []*Client            `json:"clients"`
	// SigningKey is the PEM of the RSA key that signs UAA and XSUAA tokens;
	// generated on first use and kept so tokens survive a restart.
	SigningKey string `json:"signing_key,omitempty"`
	CAKey      string `json:"ca_key,omitempty"`
	CACert     string `json:"ca_cert,omitempty"`
}

type meta struct {
	GUID        string            `json:"guid"`
	Seq         int64             `json:"seq"`
	Created     time.Time         `json:"created_at"`
	Updated     time.Time         `json:"updated_at"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Org is an organization; in the XSUAA model it also stands for the
// subaccount's identity zone.
type Org struct {
	meta
	Name string `json:"name"`
}

// Space belongs to an Org.
type Space struct {
	meta
	Name    string `json:"name"`
	OrgGUID string `json:"org_guid"`
}

// Broker is a service broker.
type Broker struct {
	meta
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Offering is a service offering of a Broker.
type Offering struct {
	meta
	Name       string `json:"name"`
	BrokerGUID string `json:"broker_guid"`
	CatalogID  string `json:"catalog_id"`
}

// Plan is a service plan of an Offering. HiddenIn lists space GUIDs where the
// plan is not visible.
type Plan struct {
	meta
	Name         string   `json:"name"`
	OfferingGUID string   `json:"offering_guid"`
	CatalogID    string   `json:"catalog_id"`
	HiddenIn     []string `json:"hidden_in,omitempty"`
}

// LastOp is the last_operation of an instance or key.
type LastOp struct {
	Type        string    `json:"type"`
	State       string    `json:"state"`
	Description string    `json:"description"`
	Created     time.Time `json:"created_at"`
	Updated     time.Time `json:"updated_at"`
}

// Instance is a managed service instance.
type Instance struct {
	meta
	Name      string         `json:"name"`
	SpaceGUID string         `json:"space_guid"`
	PlanGUID  string         `json:"plan_guid"`
	Tags      []string       `json:"tags"`
	Params    map[string]any `json:"parameters"`
	LastOp    LastOp         `json:"last_operation"`
	// AppID is the broker's application id, "<xsappname>!t<n>"; set once the
	// broker accepted the provision.
	AppID string `json:"app_id,omitempty"`
	// Busy names the job that holds the instance (create, update or delete).
	Busy string `json:"busy,omitempty"`
	// InstanceSecret is the one client secret every instance-secret key of
	// the instance shares (older XSUAA instances, recorded on real BTP).
	InstanceSecret string `json:"instance_secret,omitempty"`
}

// Key is a service key (credential binding of type key).
type Key struct {
	meta
	Name         string         `json:"name"`
	InstanceGUID string         `json:"instance_guid"`
	Params       map[string]any `json:"parameters"`
	LastOp       LastOp         `json:"last_operation"`
	// Creds holds what the broker returned, less the URLs, which are derived
	// from the host the simulator is reached at when they are read.
	Creds map[string]any `json:"credentials,omitempty"`
	Busy  string         `json:"busy,omitempty"`
}

// Job is an asynchronous Cloud Controller job.
type Job struct {
	meta
	Operation    string         `json:"operation"`
	State        string         `json:"state"`
	ResourceType string         `json:"resource_type"`
	ResourceGUID string         `json:"resource_guid"`
	Async        bool           `json:"async,omitempty"` // the broker answered 202: the CC polls it
	Polls        int            `json:"polls,omitempty"` // CC polls of the broker so far
	PollAt       time.Time      `json:"poll_at"`         // the CC's next poll of the broker (async)
	DoneAt       time.Time      `json:"done_at"`
	Fail         string         `json:"fail,omitempty"`       // broker failure, reported when the job ends
	FailEarly    bool           `json:"fail_early,omitempty"` // broker rejected the request synchronously
	NewParams    map[string]any `json:"new_params,omitempty"`
	NewPlan      string         `json:"new_plan,omitempty"`
	Errors       []apiError     `json:"errors"`
	Warnings     []string       `json:"warnings"`
	// Checks counts the GETs of the job; SeenAt is when one first saw it
	// ended (benchmarks: requests per operation and lateness).
	Checks int        `json:"checks,omitempty"`
	Name   string     `json:"name,omitempty"` // the resource's, for JobStats
	SeenAt *time.Time `json:"seen_at,omitempty"`
}

// Role is an org or space role of a user.
type Role struct {
	meta
	Type      string `json:"type"`
	UserGUID  string `json:"user_guid"`
	OrgGUID   string `json:"org_guid,omitempty"`
	SpaceGUID string `json:"space_guid,omitempty"`
}

// User is a UAA user.
type User struct {
	GUID     string   `json:"guid"`
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Origin   string   `json:"origin"`
	Scopes   []string `json:"scopes"`
}

// Client is a UAA OAuth client.
type Client struct {
	ID     string   `json:"id"`
	Secret string   `json:"secret"`
	Grants []string `json:"grants"`
	Scopes []string `json:"scopes"`
}

// Seed describes the initial world. The zero value is replaced by DefaultSeed.
type Seed struct {
	Orgs    []SeedOrg `json:"orgs" yaml:"orgs"`
	Users   []User    `json:"users" yaml:"users"`
	Clients []Client  `json:"clients" yaml:"clients"`
	// Offerings per broker: broker name → offering name → plan names.
	Brokers []SeedBroker `json:"brokers" yaml:"brokers"`
}

// SeedOrg is an org with its spaces.
type SeedOrg struct {
	Name   string   `json:"name" yaml:"name"`
	Spaces []string `json:"spaces" yaml:"spaces"`
}

// SeedBroker is a broker with its offerings.
type SeedBroker struct {
	Name      string         `json:"name" yaml:"name"`
	Offerings []SeedOffering `json:"offerings" yaml:"offerings"`
}

// SeedOffering is an offering with its plans.
type SeedOffering struct {
	Name  string   `json:"name" yaml:"name"`
	Plans []string `json:"plans" yaml:"plans"`
}

// Seeded credentials, printed by `xsprov sim` and used by `--api sim`.
const (
	AdminUser      = "admin"
	AdminPassword  = "admin-secret"
	CIClientID     = "ci-client"
	CIClientSecret = "ci-secret"
	DefaultOrg     = "acme"
	DefaultSpace   = "dev"
)

var ccScopes = []string{"cloud_controller.read", "cloud_controller.write", "cloud_controller.admin", "openid"}

// DefaultSeed returns the documented seed: org acme (dev, prod), org other
// (dev), offering xsuaa with four plans, user admin and client ci-client.
func DefaultSeed() Seed {
	return Seed{
		Orgs: []SeedOrg{{Name: "acme", Spaces: []string{"dev", "prod"}}, {Name: "other", Spaces: []string{"dev"}}},
		Users: []User{
			{Name: AdminUser, Password: AdminPassword, Origin: "uaa", Scopes: ccScopes},
			{Name: "auditor", Password: "auditor-secret", Origin: "uaa", Scopes: []string{"cloud_controller.read", "openid"}},
		},
		Clients: []Client{
			{ID: "cf", Secret: "", Grants: []string{"password", "refresh_token"}, Scopes: ccScopes},
			{ID: CIClientID, Secret: CIClientSecret, Grants: []string{"client_credentials"}, Scopes: ccScopes},
		},
		Brokers: []SeedBroker{{Name: "xsuaa", Offerings: []SeedOffering{{Name: "xsuaa", Plans: []string{"application", "broker", "apiaccess", "space"}}}},
			{Name: identityBroker, Offerings: []SeedOffering{{Name: "identity", Plans: []string{"application"}}}}},
	}
}

func (s *Sim) newID() string {
	s.st.Seq++
	if s.opts.deterministic {
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.st.Seq)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *Sim) newMeta() meta {
	now := s.now()
	return meta{GUID: s.newID(), Seq: s.st.Seq, Created: now, Updated: now}
}

// secret returns a random secret in the shape XSUAA uses; deterministic
// (derived from the sequence) when deterministic IDs are on.
func (s *Sim) secret() string {
	if s.opts.deterministic {
		s.st.Seq++
		return fmt.Sprintf("sim-secret-%06d$sim=", s.st.Seq)
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + "$" + h[32:] + "="
}

func newState() *State {
	return &State{
		Orgs: map[string]*Org{}, Spaces: map[string]*Space{}, Brokers: map[string]*Broker{},
		Offerings: map[string]*Offering{}, Plans: map[string]*Plan{}, Instances: map[string]*Instance{},
		Keys: map[string]*Key{}, Jobs: map[string]*Job{}, Roles: map[string]*Role{},
	}
}

func (s *Sim) applySeed(seed Seed) {
	for _, o := range seed.Orgs {
		org := &Org{meta: s.newMeta(), Name: o.Name}
		s.st.Orgs[org.GUID] = org
		for _, sp := range o.Spaces {
			space := &Space{meta: s.newMeta(), Name: sp, OrgGUID: org.GUID}
			s.st.Spaces[space.GUID] = space
		}
	}
	for _, u := range seed.Users {
		u := u
		if u.Origin == "" {
			u.Origin = "uaa"
		}
		if len(u.Scopes) == 0 {
			u.Scopes = ccScopes
		}
		u.GUID = s.newID()
		s.st.Users = append(s.st.Users, &u)
	}
	for _, c := range seed.Clients {
		c := c
		if len(c.Scopes) == 0 {
			c.Scopes = ccScopes
		}
		s.st.Clients = append(s.st.Clients, &c)
	}
	for _, b := range seed.Brokers {
		s.addBroker(b)
	}
}

func (s *Sim) addBroker(b SeedBroker) {
	br := &Broker{meta: s.newMeta(), Name: b.Name, URL: "https://" + strings.ToLower(b.Name) + ".broker.sim.local"}
	s.st.Brokers[br.GUID] = br
	for _, o := range b.Offerings {
		off := &Offering{meta: s.newMeta(), Name: o.Name, BrokerGUID: br.GUID}
		off.CatalogID = off.GUID
		s.st.Offerings[off.GUID] = off
		for _, p := range o.Plans {
			pl := &Plan{meta: s.newMeta(), Name: p, OfferingGUID: off.GUID}
			pl.CatalogID = pl.GUID
			s.st.Plans[pl.GUID] = pl
		}
	}
}

// sorted returns the values of m in creation order.
func sorted[T any](m map[string]*T, seq func(*T) int64) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return seq(out[i]) < seq(out[j]) })
	return out
}

func (s *Sim) orgOfSpace(spaceGUID string) *Org {
	if sp := s.st.Spaces[spaceGUID]; sp != nil {
		return s.st.Orgs[sp.OrgGUID]
	}
	return nil
}

func (s *Sim) offeringOfPlan(planGUID string) *Offering {
	if p := s.st.Plans[planGUID]; p != nil {
		return s.st.Offerings[p.OfferingGUID]
	}
	return nil
}

func (p *Plan) visibleIn(spaceGUID string) bool {
	for _, h := range p.HiddenIn {
		if h == spaceGUID {
			return false
		}
	}
	return true
}

// Login returns the first seeded user and the first client with a secret, for
// `xsprov sim` to print. Empty strings when the seed has none.
func (s *Sim) Login() (user, password, clientID, clientSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.st.Users) > 0 {
		user, password = s.st.Users[0].Name, s.st.Users[0].Password
	}
	for _, c := range s.st.Clients {
		if c.Secret != "" && slices.Contains(c.Grants, "client_credentials") {
			return user, password, c.ID, c.Secret
		}
	}
	return user, password, "", ""
}

// Target returns the first org and its first space, for `xsprov sim` to print.
func (s *Sim) Target() (org, space string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	orgs := sorted(s.st.Orgs, func(x *Org) int64 { return x.Seq })
	if len(orgs) == 0 {
		return "", ""
	}
	for _, sp := range sorted(s.st.Spaces, func(x *Space) int64 { return x.Seq }) {
		if sp.OrgGUID == orgs[0].GUID {
			return orgs[0].Name, sp.Name
		}
	}
	return orgs[0].Name, ""
}
