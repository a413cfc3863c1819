//go:build unix

// Command benchtool measures xsprov against `xsprov sim` on loopback and,
// where a cf binary is available, the same flow with the cf CLI. Run it as
// scripts/bench; see docs/BENCHMARKS.md for the method.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	runs    = flag.Int("runs", 9, "runs per measurement (the slow broker delays use fewer)")
	delays  = flag.String("delays", "300ms,2s,8s", "broker delays for the overhead measurement")
	cfRuns  = flag.Int("cf-runs", 3, "runs of the cf CLI flow (0 to skip)")
	applyN  = flag.Int("apply-instances", 100, "instances in the apply benchmark")
	profs   = flag.String("profiles", "sync,btp,async20,async60", "broker profiles to wait on beside the cf CLI (empty to skip)")
	fleet   = flag.Bool("fleet", true, "run the fleet profiles (100 on an async broker; 1,000 on a 300 ms one)")
	outFile = flag.String("o", "", "write the report (Markdown) to this file as well")
)

type sample struct {
	wall   time.Duration
	reqs   int64
	writes int64
	rssKB  int64
	logins int64 // of reqs: token requests to the UAA
}

type stat struct{ med, min, max float64 }

func stats(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: med, min: s[0], max: s[len(s)-1]}
}

func (s stat) fmt(unit string, prec int) string {
	f := "%." + fmt.Sprint(prec) + "f"
	return fmt.Sprintf(f+" %s (min "+f+", max "+f+")", s.med, unit, s.min, s.max)
}

type bench struct {
	root, bin, work string
	simURL          string
	sim             *exec.Cmd
	results         []row
}

type row struct{ what, figure, target, verdict string }

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	b := &bench{}
	var err error
	if b.root, err = os.Getwd(); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "xsprov-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	b.bin = filepath.Join(b.work, "xsprov")
	step("building xsprov")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", b.bin, "./cmd/xsprov").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	if err := b.simStartup(); err != nil {
		return err
	}
	if err := b.startSim(); err != nil {
		return err
	}
	defer b.stopSim()
	if err := b.simThroughput(); err != nil {
		return err
	}
	fresh, err := b.freshAndRerun()
	if err != nil {
		return err
	}
	if err := b.overhead(); err != nil {
		return err
	}
	if err := b.version(); err != nil {
		return err
	}
	if err := b.apply(); err != nil {
		return err
	}
	b.cfFlow(fresh)
	if err := b.profiles(); err != nil {
		return err
	}
	if *fleet {
		if err := b.fleet(); err != nil {
			return err
		}
	}
	b.write()
	return nil
}

func step(msg string) { fmt.Fprintln(os.Stderr, "==> "+msg) }

func (b *bench) add(what, figure, target string, ok *bool) {
	v := ""
	if ok != nil {
		v = map[bool]string{true: "met", false: "MISSED"}[*ok]
	}
	b.results = append(b.results, row{what, figure, target, v})
	fmt.Fprintf(os.Stderr, "    %s: %s %s\n", what, figure, v)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitUp(u string, deadline time.Time) error {
	for time.Now().Before(deadline) {
		resp, err := http.Get(u + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("simulator did not come up")
}

// simStartup: process start until GET / answers.
func (b *bench) simStartup() error {
	step("simulator start-up")
	var xs []float64
	for i := 0; i < *runs*2; i++ {
		addr, err := freePort()
		if err != nil {
			return err
		}
		cmd := exec.Command(b.bin, "sim", "--addr", addr, "--profile", "instant")
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		err = waitUp("http://"+addr, time.Now().Add(10*time.Second))
		d := time.Since(start)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err != nil {
			return err
		}
		xs = append(xs, ms(d))
	}
	s := stats(xs)
	ok := s.med < 50
	b.add("`xsprov sim` start-up (process start to first answer)", s.fmt("ms", 1), "< 50 ms", &ok)
	return nil
}

func (b *bench) startSim() error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	b.simURL = "http://" + addr
	// No --state: saving the whole world after every change would make the
	// simulator, not xsprov, the cost of the 1,000-instance runs.
	b.sim = exec.Command(b.bin, "sim", "--addr", addr, "--profile", "instant")
	if err := b.sim.Start(); err != nil {
		return err
	}
	if err := waitUp(b.simURL, time.Now().Add(10*time.Second)); err != nil {
		return err
	}
	// warm up the signing key and connection paths once
	_, err = b.xsprov(nil, "status", "warmup")
	_ = err
	return nil
}

func (b *bench) stopSim() {
	if b.sim != nil && b.sim.Process != nil {
		_ = b.sim.Process.Signal(os.Interrupt)
		_ = b.sim.Wait()
	}
}

func (b *bench) ctl(method, path string) ([]byte, error) {
	req, _ := http.NewRequest(method, b.simURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: HTTP %d %s", method, path, resp.StatusCode, body)
	}
	return body, nil
}

func (b *bench) counts() (int64, int64, int64) {
	body, err := b.ctl(http.MethodGet, "/_sim/counts")
	if err != nil {
		return -1, -1, -1
	}
	var c struct {
		Total, Writes int64
		ByCall        map[string]int64 `json:"by_call"`
	}
	_ = json.Unmarshal(body, &c)
	return c.Total, c.Writes, c.ByCall["POST /uaa/oauth/token"]
}

func (b *bench) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CF_") {
			env = append(env, kv)
		}
	}
	return append(env, "CF_API="+b.simURL, "CF_CLIENT_ID=ci-client", "CF_CLIENT_SECRET=ci-secret", "CF_ORG=acme", "CF_SPACE=dev")
}

// xsprov runs one command and measures it, with counts taken at the simulator.
func (b *bench) xsprov(extraEnv []string, args ...string) (sample, error) {
	if _, err := b.ctl(http.MethodDelete, "/_sim/counts"); err != nil {
		return sample{}, err
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Dir = b.work
	cmd.Env = append(b.env(), extraEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	s := sample{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssKB = ru.Maxrss
	}
	s.reqs, s.writes, s.logins = b.counts()
	if err != nil {
		return s, fmt.Errorf("xsprov %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return s, nil
}

func (b *bench) simThroughput() error {
	step("simulator throughput: GET /v3/service_instances?names=…")
	// a token and a space to query
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"ci-client"}, "client_secret": {"ci-secret"}}
	resp, err := http.PostForm(b.simURL+"/uaa/oauth/token", form)
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	var rates []float64
	for r := 0; r < 3; r++ {
		var n atomic.Int64
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var wg sync.WaitGroup
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		start := time.Now()
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.simURL+"/v3/service_instances?names=bench-fresh-0", nil)
					req.Header.Set("Authorization", "bearer "+tok.AccessToken)
					resp, err := hc.Do(req)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						n.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		rates = append(rates, float64(n.Load())/time.Since(start).Seconds())
		hc.CloseIdleConnections()
	}
	// Let cancelled requests drain so that they are not counted in the next
	// measurement.
	time.Sleep(200 * time.Millisecond)
	s := stats(rates)
	ok := s.med >= 5000
	b.add("simulator: GET /v3/service_instances?names=… per second (4 clients, same 2 cores)", s.fmt("req/s", 0), "≥ 5,000 req/s", &ok)
	return nil
}

func (b *bench) freshAndRerun() (stat, error) {
	step("fresh up and no-change re-run, instant broker")
	if _, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=0s"); err != nil {
		return stat{}, err
	}
	var fw, fr, rw, rr, rwr, rss []float64
	for i := 0; i < *runs; i++ {
		name := fmt.Sprintf("bench-fresh-%d", i)
		s, err := b.xsprov(nil, "up", name, "--xsappname", name)
		if err != nil {
			return stat{}, err
		}
		fw, fr, rss = append(fw, ms(s.wall)), append(fr, float64(s.reqs)), append(rss, float64(s.rssKB)/1024)
		s, err = b.xsprov(nil, "up", name, "--xsappname", name)
		if err != nil {
			return stat{}, err
		}
		rw, rr, rwr, rss = append(rw, ms(s.wall)), append(rr, float64(s.reqs)), append(rwr, float64(s.writes)), append(rss, float64(s.rssKB)/1024)
	}
	f := stats(fw)
	ok := f.med <= 50
	b.add("fresh `up` wall time, instant broker", f.fmt("ms", 1), "≤ 50 ms median", &ok)
	r := stats(fr)
	ok = r.max <= 10
	b.add("fresh `up` HTTP requests (counted at the simulator)", r.fmt("", 0), "≤ 10", &ok)
	w := stats(rw)
	ok = w.med <= 50
	b.add("no-change re-run wall time", w.fmt("ms", 1), "≤ 50 ms median", &ok)
	rq := stats(rr)
	ok = rq.max <= 8
	b.add("no-change re-run HTTP requests", rq.fmt("", 0), "≤ 8", &ok)
	wr := stats(rwr)
	ok = wr.max == 0
	b.add("no-change re-run writes", wr.fmt("", 0), "0", &ok)
	m := stats(rss)
	b.add("peak RSS of an `up` run", m.fmt("MB", 1), "", nil)
	return f, nil
}

func (b *bench) overhead() error {
	for _, ds := range strings.Split(*delays, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(ds))
		if err != nil {
			return err
		}
		step("overhead above a broker delay of " + d.String())
		if _, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration="+d.String()); err != nil {
			return err
		}
		n := *runs
		if d >= 2*time.Second {
			n = 3
		}
		var xs []float64
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("bench-delay-%s-%d", strings.ReplaceAll(d.String(), ".", "_"), i)
			s, err := b.xsprov(nil, "up", name, "--xsappname", name)
			if err != nil {
				return err
			}
			xs = append(xs, ms(s.wall-2*d)) // create and bind each take d
		}
		s := stats(xs)
		limit := 50 + 0.05*ms(2*d)
		ok := s.med <= limit
		b.add(fmt.Sprintf("overhead above the broker, delay %s per operation (2 operations)", d), s.fmt("ms", 1), fmt.Sprintf("≤ %.0f ms", limit), &ok)
	}
	_, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=0s")
	return err
}

func (b *bench) version() error {
	step("xsprov --version start-up")
	var xs []float64
	for i := 0; i < 31; i++ {
		start := time.Now()
		if err := exec.Command(b.bin, "--version").Run(); err != nil {
			return err
		}
		xs = append(xs, ms(time.Since(start)))
	}
	s := stats(xs)
	ok := s.med < 15
	b.add("`xsprov --version` start-up", s.fmt("ms", 2), "< 15 ms median", &ok)
	return nil
}

// apply measures `xsprov apply` of many instances once the command exists.
func (b *bench) apply() error {
	if err := exec.Command(b.bin, "apply", "--help").Run(); err != nil {
		b.add("`apply` of 100 instances with keys at --parallel 20", "not measured: `xsprov apply` is not implemented yet (issue 5)", "≤ 3.6 s, ≤ 60 MB", nil)
		return nil
	}
	step(fmt.Sprintf("apply of %d instances at --parallel 20, broker 300ms", *applyN))
	spec := filepath.Join(b.work, "apply.yaml")
	var sb strings.Builder
	sb.WriteString("apiVersion: xsprov/v1\ninstances:\n")
	for i := 0; i < *applyN; i++ {
		fmt.Fprintf(&sb, "  - name: apply-%03d\n    space: dev\n    parameters: {xsappname: apply-%03d}\n    keys: [{name: apply-%03d-key, out: apply-%03d.json}]\n", i, i, i, i)
	}
	if err := os.WriteFile(spec, []byte(sb.String()), 0o600); err != nil {
		return err
	}
	if _, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=300ms"); err != nil {
		return err
	}
	var xs, rss []float64
	for i := 0; i < 3; i++ {
		_, _ = b.xsprov(nil, "destroy", "-f", spec, "--yes")
		s, err := b.xsprov(nil, "apply", "-f", spec, "--parallel", "20")
		if err != nil {
			return err
		}
		xs, rss = append(xs, s.wall.Seconds()), append(rss, float64(s.rssKB)/1024)
	}
	s := stats(xs)
	ok := s.med <= 3.6
	b.add("`apply` of 100 instances with keys at --parallel 20, broker 300 ms (bound 3.0 s)", s.fmt("s", 2), "≤ 3.6 s", &ok)
	m := stats(rss)
	ok = m.max <= 60
	b.add("peak RSS of `apply`", m.fmt("MB", 1), "≤ 60 MB", &ok)
	re, err := b.xsprov(nil, "apply", "-f", spec, "--parallel", "20")
	if err != nil {
		return err
	}
	ok = re.writes == 0
	b.add("`apply` no-change re-run of the 100 (requests, writes, wall time)", fmt.Sprintf("%d requests, %d writes, %.0f ms", re.reqs, re.writes, ms(re.wall)), "0 writes", &ok)
	_, err = b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=0s")
	return err
}

func findCF(root string) string {
	if p := os.Getenv("XSPROV_CF_BIN"); p != "" {
		return p
	}
	if p := filepath.Join(root, ".bin", "cf"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("cf"); err == nil {
		return p
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (b *bench) cfFlow(fresh stat) {
	cf := findCF(b.root)
	if cf == "" || *cfRuns == 0 {
		b.add("cf CLI flow", "skipped: no cf binary (scripts/build-cf builds one)", "", nil)
		return
	}
	step("the same flow with the cf CLI")
	params := filepath.Join(b.work, "xs.json")
	var xs []float64
	for i := 0; i < *cfRuns; i++ {
		home, _ := os.MkdirTemp(b.work, "cfhome-")
		name := fmt.Sprintf("bench-cf-%d", i)
		_ = os.WriteFile(params, []byte(`{"xsappname":"`+name+`","tenant-mode":"dedicated"}`), 0o600)
		steps := [][]string{
			{"api", b.simURL}, {"auth", "admin", "admin-secret"}, {"target", "-o", "acme", "-s", "dev"},
			{"create-service", "xsuaa", "application", name, "-c", params, "--wait"},
			{"create-service-key", name, name + "-key", "--wait"},
			{"service-key", name, name + "-key"},
		}
		start := time.Now()
		for _, args := range steps {
			cmd := exec.Command(cf, args...)
			cmd.Env = append(os.Environ(), "CF_HOME="+home, "CF_COLOR=false")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.add("cf CLI flow", fmt.Sprintf("failed at cf %s: %v: %s", args[0], err, out), "", nil)
				return
			}
		}
		xs = append(xs, ms(time.Since(start)))
	}
	s := stats(xs)
	b.add("cf CLI flow (api, auth, target, create-service --wait, create-service-key --wait, service-key)", s.fmt("ms", 0), "", nil)
	ratio := s.med / fresh.med
	ok := ratio >= 100
	b.add("cf CLI flow ÷ xsprov fresh `up` (medians, same run)", fmt.Sprintf("%.0f×", ratio), "≥ 100×", &ok)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (b *bench) write() {
	var w bytes.Buffer
	host, _ := os.Hostname()
	fmt.Fprintf(&w, "Measured %s on %s: %s/%s, %d CPUs, %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(&w, "| measurement | median (min, max) | target | |")
	fmt.Fprintln(&w, "|---|---|---|---|")
	for _, r := range b.results {
		fmt.Fprintf(&w, "| %s | %s | %s | %s |\n", r.what, r.figure, r.target, r.verdict)
	}
	os.Stdout.Write(w.Bytes())
	if *outFile == "" {
		return
	}
	doc, err := os.ReadFile(*outFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: cannot update", *outFile, err)
		return
	}
	const begin, end = "<!-- results:begin -->", "<!-- results:end -->"
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		fmt.Fprintln(os.Stderr, "bench:", *outFile, "lacks the results markers")
		return
	}
	s = s[:i+len(begin)] + "\n" + w.String() + s[j:]
	if err := os.WriteFile(*outFile, []byte(s), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}
