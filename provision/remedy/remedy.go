// Package remedy names what a user can do about a failure, as data. The core
// attaches a Remedy to its errors; the command line turns it into words, so
// the core never names a command or a flag.
package remedy

import "errors"

// Action is a kind of remedy.
type Action int

// Actions. The fields of Remedy that each one uses are named beside it.
const (
	None Action = iota
	// Recreate: delete and create Instance again; Changes could apply in place.
	Recreate
	// Create: create Instance (and its key) first.
	Create
	// RereadCredentials: the key may have changed; re-read Instance's current key.
	RereadCredentials
	// ReplaceBrokenKey: delete Instance's key and create it again.
	ReplaceBrokenKey
	// OtherPlan: Instance exists with another plan: name that plan, or recreate.
	OtherPlan
	// ChooseBroker: one of the brokers in Names.
	ChooseBroker
	// CheckOffering: the offering name or the subaccount's entitlements.
	CheckOffering
	// ChoosePlan: one of the plans in Names, or ask an admin to enable it.
	ChoosePlan
	// SetTarget: name an org and a space.
	SetTarget
	// Login: give credentials or log in with the cf CLI.
	Login
	// CheckLogin: the credentials given were refused.
	CheckLogin
	// SetClientSecret: a client id was given without a secret.
	SetClientSecret
	// SetPassword: a user was given without a password.
	SetPassword
	// CheckAPI: the API URL or the network.
	CheckAPI
	// RequestRole: the user lacks the role (SpaceDeveloper) for the operation.
	RequestRole
	// CheckTokenUser: the user and password for a password-grant token.
	CheckTokenUser
	// CheckTokenURL: the url/certurl of the credentials, or the network.
	CheckTokenURL
	// RotateAgain: run the rotation of Instance again; Names are keys left over.
	RotateAgain
	// DeleteKeys: delete the keys in Names of Instance by hand.
	DeleteKeys
	// Adopt: let the spec take over an existing instance.
	Adopt
	// GiveWholeDescriptor: single fields cannot be merged into a descriptor
	// that cannot be read; give all of it.
	GiveWholeDescriptor
	// MoveOffInstanceSecret: the instance issues one shared secret to every
	// key; enable binding-secret or x509 first. Names: a key left behind.
	MoveOffInstanceSecret
	// Confirm: a change that removes or replaces something needs a yes.
	Confirm
	// AllowOutsidePaths: a spec writes files outside its folder.
	AllowOutsidePaths
	// UseX509: the output needs an x509 key.
	UseX509
	// Pruned: deleted because the spec no longer lists it and pruning is on.
	Pruned
	// TrustCA: the server's TLS certificate is not trusted.
	TrustCA
	// CrossConsumption: XSUAA takes IAS tokens only from an IAS application
	// of its subaccount with xsuaa-cross-consumption.
	CrossConsumption
)

// Remedy is what to do about a failure. Note holds facts that the remedy
// should be read with ("the credentials file still holds key x").
type Remedy struct {
	Action   Action
	Instance string
	Names    []string
	Changes  []string
	// Keep maps fields to the values that keep the instance as it is.
	Keep map[string]string
	Note string
}

// Error is an error with a remedy.
type Error struct {
	Err    error
	Remedy Remedy
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint returns the remedy (the face words it).
func (e *Error) Hint() Remedy { return e.Remedy }

// With attaches a remedy to err.
func With(err error, r Remedy) error { return &Error{Err: err, Remedy: r} }

// Of returns the remedy attached to err, if any.
func Of(err error) (Remedy, bool) {
	var h interface{ Hint() Remedy }
	if errors.As(err, &h) {
		return h.Hint(), true
	}
	return Remedy{}, false
}
