package provision

import (
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/provision/xsuaa"
)

// Action says what was done to a resource.
type Action string

// Actions.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
	Recreated Action = "recreated"
	Deleted   Action = "deleted"
	Absent    Action = "absent"
	Submitted Action = "submitted"
)

// InstanceResult describes the instance after a command.
type InstanceResult struct {
	Name     string `json:"name"`
	GUID     string `json:"guid,omitempty"`
	Offering string `json:"offering,omitempty"`
	Plan     string `json:"plan,omitempty"`
	State    string `json:"state,omitempty"`
	Action   Action `json:"action"`
}

// KeyResult describes the key after a command.
type KeyResult struct {
	Name   string `json:"name"`
	GUID   string `json:"guid,omitempty"`
	State  string `json:"state,omitempty"`
	Action Action `json:"action"`
	// ExpiresAt is the end of its certificate's validity (x509 keys, when
	// known).
	ExpiresAt *time.Time `json:"certificate_expires_at,omitempty"`
}

// Result is the machine-readable result of up, down, recreate and creds.
// It never holds secret values.
type Result struct {
	FormatVersion string `json:"format_version"`
	// DryRun: the actions are what would be done; nothing was changed.
	DryRun     bool           `json:"dry_run,omitempty"`
	API        string         `json:"api"`
	Org        string         `json:"org"`
	Space      string         `json:"space"`
	Instance   InstanceResult `json:"instance"`
	Key        *KeyResult     `json:"key,omitempty"`
	File       string         `json:"credentials_file,omitempty"`
	ExtraFiles []string       `json:"extra_files,omitempty"`
	Token      *xsuaa.Token   `json:"verified_token,omitempty"`
	FileAction Action         `json:"credentials_file_action,omitempty"`
	ClientID   string         `json:"client_id,omitempty"`
	URL        string         `json:"url,omitempty"`
	Warnings   []string       `json:"warnings,omitempty"`
	creds      map[string]any // for --verify and the file; never serialised
}

// Credentials returns the credentials fetched by the command, if any.
func (r *Result) Credentials() map[string]any { return r.creds }

func (p *Provisioner) newResult(t cfapi.Target, name string) *Result {
	return &Result{FormatVersion: FormatVersion, DryRun: p.dryRun, API: p.s.API, Org: t.OrgName, Space: t.SpaceName, Instance: InstanceResult{Name: name}}
}

// Status is the result of `xsprov status`.
type Status struct {
	FormatVersion string     `json:"format_version"`
	API           string     `json:"api"`
	Org           string     `json:"org"`
	Space         string     `json:"space"`
	Exists        bool       `json:"exists"`
	Instance      *InstState `json:"instance,omitempty"`
	Keys          []KeyState `json:"keys"`
	Drift         *Drift     `json:"drift,omitempty"`
	File          *FileState `json:"credentials_file,omitempty"`
}

// InstState is an instance's state.
type InstState struct {
	Name          string `json:"name"`
	GUID          string `json:"guid"`
	Offering      string `json:"offering"`
	Plan          string `json:"plan"`
	LastOperation OpView `json:"last_operation"`
}

// OpView is a last operation.
type OpView struct {
	Type        string    `json:"type"`
	State       string    `json:"state"`
	Description string    `json:"description,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// KeyState is a key's state.
type KeyState struct {
	Name          string    `json:"name"`
	GUID          string    `json:"guid"`
	Current       bool      `json:"current"`
	CreatedAt     time.Time `json:"created_at"`
	LastOperation OpView    `json:"last_operation"`
}

// Drift compares parameters.
type Drift struct {
	Drifted       bool              `json:"drifted"`
	Changes       []xssec.DiffEntry `json:"changes"`
	NeedsRecreate []string          `json:"needs_recreate,omitempty"`
}

// FileState describes the local credentials file.
type FileState struct {
	Path       string     `json:"path"`
	Exists     bool       `json:"exists"`
	ModifiedAt *time.Time `json:"modified_at,omitempty"`
	AgeSeconds int64      `json:"age_seconds,omitempty"`
	Mode       string     `json:"mode,omitempty"`
}

func opView(o resource.LastOperation) OpView {
	return OpView{Type: o.Type, State: o.State, Description: o.Description, UpdatedAt: o.UpdatedAt}
}

// RotateResult is the machine-readable result of a rotation.
type RotateResult struct {
	FormatVersion string       `json:"format_version"`
	DryRun        bool         `json:"dry_run,omitempty"`
	Org           string       `json:"org"`
	Space         string       `json:"space"`
	Instance      string       `json:"instance"`
	NewKey        KeyResult    `json:"new_key"`
	Replaced      string       `json:"replaced_key,omitempty"`
	Deleted       []string     `json:"deleted_keys"`
	Kept          []KeptKey    `json:"kept_keys"`
	File          string       `json:"credentials_file,omitempty"`
	ExtraFiles    []string     `json:"extra_files,omitempty"`
	ClientID      string       `json:"client_id,omitempty"`
	Token         *xsuaa.Token `json:"verified_token,omitempty"`
}

// KeptKey is an old key kept for a grace period.
type KeptKey struct {
	Name        string    `json:"name"`
	RetireAfter time.Time `json:"retire_after"`
}

// Changed tells whether the command changed (or, in a dry run, would change)
// anything.
func (r *Result) Changed() bool {
	moved := func(a Action) bool { return a != "" && a != Unchanged && a != Absent }
	return moved(r.Instance.Action) || (r.Key != nil && moved(r.Key.Action)) || moved(r.FileAction)
}
