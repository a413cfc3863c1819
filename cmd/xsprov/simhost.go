package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rogpeppe/go-internal/lockedfile"
	"github.com/xsprov/xsprov/provision/cfsim"
)

// simHost runs the simulator in-process for --api sim, on a loopback port,
// with its world kept in a state file so that separate runs of xsprov see
// the same landscape. An exclusive lock on the state file serialises
// concurrent runs, as one Cloud Controller would.
type simHost struct {
	URL string
	CA  *x509.CertPool
	sim *cfsim.Sim
	srv *http.Server
	tls *http.Server
	// unlock releases the state file's lock (lockedfile: flock on unix,
	// LockFileEx on windows).
	unlock func()
}

// simStateError is a problem with the state file the user chose (bad input).
type simStateError struct{ err error }

func (e *simStateError) Error() string { return e.err.Error() }

func startEmbeddedSim(statePath string) (*simHost, error) {
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		return nil, &simStateError{err}
	}
	unlock, err := lockedfile.MutexAt(statePath + ".lock").Lock()
	if err != nil {
		return nil, &simStateError{fmt.Errorf("lock %s: %w", statePath, err)}
	}
	// The BTP timing profile: a create takes about 6 s, as on SAP BTP, so
	// waiting and its cost are what a real landscape shows.
	btp, _ := cfsim.LookupProfile("btp")
	sim, err := cfsim.New(cfsim.WithStateFile(statePath), cfsim.WithProfile(btp))
	if err != nil {
		unlock()
		return nil, &simStateError{err}
	}
	// A port derived from the state file keeps the URLs in credentials the
	// same across runs on one world (runs on one state file are serialised by
	// the lock); a random one when it is taken.
	port := stablePort(statePath)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		unlock()
		return nil, fmt.Errorf("embedded simulator: %w", err)
	}
	h := &simHost{URL: "http://" + ln.Addr().String(), sim: sim, srv: &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}, unlock: unlock}
	go func() { _ = h.srv.Serve(ln) }()
	// The mTLS listener for x509 keys' certurl.
	certBase, tlsSrv, pool, err := serveMTLS(sim, fmt.Sprintf("127.0.0.1:%d", port+1))
	if err != nil {
		certBase, tlsSrv, pool, err = serveMTLS(sim, "127.0.0.1:0")
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("embedded simulator: %w", err)
	}
	h.tls, h.CA = tlsSrv, pool
	sim.SetCertURL(certBase)
	return h, nil
}

// stablePort maps a state file to a port in 20000..39998.
func stablePort(path string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	return 20000 + int(h.Sum32()%9999)*2
}

// serveMTLS serves the simulator over TLS with client certificates verified
// against its CA, and returns the base URL and a pool trusting the CA.
func serveMTLS(sim *cfsim.Sim, addr string) (string, *http.Server, *x509.CertPool, error) {
	cfg, err := sim.TLSConfig("127.0.0.1", "localhost")
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return "", nil, nil, err
	}
	caPEM, err := sim.CACertPEM()
	if err != nil {
		ln.Close()
		return "", nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "https://" + ln.Addr().String(), srv, pool, nil
}

func (h *simHost) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
	if h.tls != nil {
		_ = h.tls.Shutdown(ctx)
	}
	_ = h.sim.Save()
	h.unlock()
}
