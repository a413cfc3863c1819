package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/xssec"
)

// On real SAP BTP nobody can read an XSUAA instance's (or key's) parameters
// back (400 120004 / 90007), so xsprov remembers what it applied on the
// resource itself, in annotations (a value holds at most 5,000 characters:
// the descriptor when it fits, else its digest).
const (
	// AnnotationParameters holds the descriptor xsprov last applied to an
	// instance, or "sha256:<hex>" of it.
	AnnotationParameters = "xsprov.io/parameters"
	// AnnotationAppliedAt is the start of xsprov's last update of the
	// instance (the CC's time); a later update was made by someone else.
	AnnotationAppliedAt = "xsprov.io/applied-at"
	// AnnotationKeyParameters holds the parameters a key was created with.
	AnnotationKeyParameters = "xsprov.io/key-parameters"

	maxAnnotation = 5000
	digestPrefix  = "sha256:"
)

// recordValue is the annotation value for a descriptor: its compact JSON
// when that fits, else its digest.
func recordValue(d map[string]any) string {
	b, _ := json.Marshal(d)
	if len(b) <= maxAnnotation {
		return string(b)
	}
	sum := sha256.Sum256(b)
	return digestPrefix + hex.EncodeToString(sum[:])
}

// recordMeta is metadata recording desired on an instance (with the labels
// of the provisioner).
func (p *Provisioner) recordMeta(desired map[string]any, appliedAt string) *resource.Metadata {
	m := &resource.Metadata{Labels: map[string]*string{}, Annotations: map[string]*string{}}
	for k, v := range p.labels {
		m.Labels[k] = &v
	}
	rec := recordValue(desired)
	m.Annotations[AnnotationParameters] = &rec
	if appliedAt != "" {
		m.Annotations[AnnotationAppliedAt] = &appliedAt
	}
	return m
}

// Record is what xsprov remembers of an instance's descriptor.
type Record struct {
	// Descriptor is the descriptor last applied (nil when only its Digest
	// fits in the annotation).
	Descriptor map[string]any
	Digest     string
	// Stale: the instance was updated by someone else since.
	Stale bool
}

// RecordOf reads xsprov's record from an instance's annotations; false when
// there is none.
func RecordOf(inst *resource.ServiceInstance) (Record, bool) {
	if inst == nil || inst.Metadata == nil || inst.Metadata.Annotations[AnnotationParameters] == nil {
		return Record{}, false
	}
	v := *inst.Metadata.Annotations[AnnotationParameters]
	var r Record
	if d, ok := strings.CutPrefix(v, digestPrefix); ok {
		r.Digest = d
	} else if json.Unmarshal([]byte(v), &r.Descriptor) != nil || r.Descriptor == nil {
		return Record{}, false
	}
	r.Stale = updatedByOthers(inst)
	return r, true
}

// updatedByOthers: the instance's last operation is an update that xsprov
// did not record (a create is recorded with the instance itself).
func updatedByOthers(inst *resource.ServiceInstance) bool {
	lo := inst.LastOperation
	if lo.Type != "update" {
		return false
	}
	var at time.Time
	if v := inst.Metadata.Annotations[AnnotationAppliedAt]; v != nil {
		at, _ = time.Parse(time.RFC3339, *v)
	}
	// the CC stamps the operation and its job in one request; a second of
	// slack covers rounding
	d := lo.CreatedAt.Sub(at)
	return at.IsZero() || d > time.Second || d < -time.Second
}

// Matches tells whether the record says the instance holds desired.
func (r Record) Matches(desired map[string]any) bool {
	if r.Descriptor != nil {
		return len(xssec.Diff(r.Descriptor, desired)) == 0
	}
	return r.matches(desired)
}

// matches tells whether a digest record says the instance holds desired.
func (r Record) matches(desired map[string]any) bool {
	if r.Descriptor != nil {
		return false // compared by diff instead
	}
	return recordValue(desired) == digestPrefix+r.Digest
}
