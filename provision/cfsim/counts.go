package cfsim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Counts is the request count seen by the simulator.
type Counts struct {
	Total  int64            `json:"total"`
	Writes int64            `json:"writes"`
	ByCall map[string]int64 `json:"by_call"`
}

// Counts returns the requests served so far. Total and Writes count the Cloud
// Controller and UAA; XSUAA zone endpoints (a key's token URL) appear only in
// ByCall, prefixed "XSUAA ".
func (s *Sim) Counts() Counts {
	c := Counts{Total: s.requests.Load(), Writes: s.writes.Load(), ByCall: map[string]int64{}}
	s.counts.Range(func(k, v any) bool {
		c.ByCall[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return c
}

// ResetCounts zeroes the request counters.
func (s *Sim) ResetCounts() {
	s.requests.Store(0)
	s.writes.Store(0)
	s.counts.Range(func(k, _ any) bool { s.counts.Delete(k); return true })
}

func (s *Sim) count(call string, write bool) {
	s.requests.Add(1)
	if write {
		s.writes.Add(1)
	}
	s.countCall(call)
}

func (s *Sim) countCall(call string) {
	v, _ := s.counts.LoadOrStore(call, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Snapshot returns a deep copy of the state, after advancing due jobs.
func (s *Sim) Snapshot() *State {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	b, _ := json.Marshal(s.st)
	var st State
	_ = json.Unmarshal(b, &st)
	return &st
}

// Save writes the state file (a no-op without WithStateFile).
func (s *Sim) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
	return s.saveLocked()
}

func (s *Sim) saveLocked() error {
	if s.opts.stateFile == "" || !s.dirty {
		return nil
	}
	b, err := json.Marshal(s.st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.opts.stateFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cfsim-state-*")
	if err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save simulator state: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), s.opts.stateFile); err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	s.dirty = false
	return nil
}

func loadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read simulator state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("simulator state %s is corrupt: %w", path, err)
	}
	return st, nil
}
