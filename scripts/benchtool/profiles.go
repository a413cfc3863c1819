//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// profile is a broker timing the waiting is measured on.
type profile struct {
	name, label, timing string // timing: the query of PUT /_sim/timing
	delay               time.Duration
	// targets per operation: lateness, and job requests as a share of the
	// cf CLI's (0: none)
	maxLate time.Duration
	share   float64
}

var allProfiles = []profile{
	{"sync", "synchronous broker, 0.3 s per operation", "async=false", 300 * time.Millisecond, 0, 0},
	{"btp", "BTP profile (asynchronous, CC polls every 5 s, creates take 5 s)", "profile=btp", 0, time.Second, 1},
	{"async20", "asynchronous broker, 20 s, CC polls every 60 s", "async=true&cc_poll_interval=60s&worker_delay=500ms", 20 * time.Second, 2 * time.Second, 0.5},
	{"async60", "asynchronous broker, 60 s, CC polls every 60 s", "async=true&cc_poll_interval=60s&worker_delay=500ms", 60 * time.Second, 2 * time.Second, 0.5},
}

type jobStat = cfsim.JobStat

// waitCost sums what waiting cost one tool: job requests and lateness per
// operation.
type waitCost struct {
	ops, checks int
	late        []float64 // ms
}

func (w waitCost) perOp() float64 { return float64(w.checks) / float64(max(w.ops, 1)) }

func (b *bench) jobs() ([]jobStat, error) {
	body, err := b.ctl(http.MethodGet, "/_sim/jobs")
	if err != nil {
		return nil, err
	}
	var js []jobStat
	return js, json.Unmarshal(body, &js)
}

func costOf(js []jobStat, prefix string) waitCost {
	var c waitCost
	for _, j := range js {
		if !strings.HasPrefix(j.Name, prefix) || j.Ended == nil || j.Seen == nil {
			continue
		}
		c.ops++
		c.checks += j.Checks
		c.late = append(c.late, ms(j.Seen.Sub(*j.Ended)))
	}
	return c
}

// profiles runs one `xsprov up` and the cf CLI's create-service --wait and
// create-service-key --wait side by side on each profile, and compares job
// requests per operation and lateness (from a job's end to the request that
// saw it), counted at the simulator.
func (b *bench) profiles() error {
	cf := findCF(b.root)
	for _, name := range strings.Split(*profs, ",") {
		var p *profile
		for i := range allProfiles {
			if allProfiles[i].name == strings.TrimSpace(name) {
				p = &allProfiles[i]
			}
		}
		if p == nil {
			continue
		}
		step("waiting on the " + p.label)
		q := p.timing
		if p.delay > 0 {
			q += "&worker_delay=500ms"
		}
		if _, err := b.ctl(http.MethodPut, "/_sim/timing?"+q); err != nil {
			return err
		}
		if p.delay > 0 || p.name == "sync" {
			if _, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration="+p.delay.String()); err != nil {
				return err
			}
		}
		if _, err := b.ctl(http.MethodDelete, "/_sim/jobs"); err != nil {
			return err
		}
		var wg sync.WaitGroup
		var xErr, cErr error
		var xWall, cWall time.Duration
		xname, cname := "bx-"+p.name, "bc-"+p.name
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			cmd := exec.Command(b.bin, "up", xname, "--xsappname", xname)
			cmd.Dir, cmd.Env = b.work, b.env()
			if out, err := cmd.CombinedOutput(); err != nil {
				xErr = fmt.Errorf("xsprov up: %v: %s", err, out)
			}
			xWall = time.Since(start)
		}()
		if cf != "" && *cfRuns > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cWall, cErr = b.cfUp(cf, cname)
			}()
		}
		wg.Wait()
		if xErr != nil {
			return xErr
		}
		js, err := b.jobs()
		if err != nil {
			return err
		}
		x := costOf(js, xname)
		lx := stats(x.late)
		okLate := p.maxLate == 0 || lx.max <= ms(p.maxLate)
		if p.name == "sync" {
			over := ms(xWall) - 2*ms(p.delay)
			ok := over <= 50
			b.add(fmt.Sprintf("%s: xsprov `up` overhead above the broker (2 operations, whole process)", p.label), fmt.Sprintf("%.0f ms", over), "≤ 50 ms", &ok)
		}
		target := ""
		if p.maxLate > 0 {
			target = fmt.Sprintf("≤ %v", p.maxLate)
		}
		b.add(fmt.Sprintf("%s: xsprov lateness per operation", p.label), lx.fmt("ms", 0), target, map[bool]*bool{true: &okLate, false: nil}[p.maxLate > 0])
		if cErr != nil || cf == "" || *cfRuns == 0 {
			b.add(fmt.Sprintf("%s: xsprov job requests per operation", p.label), fmt.Sprintf("%.1f (cf CLI not run: %v)", x.perOp(), cErr), "", nil)
			continue
		}
		c := costOf(js, cname)
		lc := stats(c.late)
		figure := fmt.Sprintf("xsprov %.1f, cf CLI %.1f", x.perOp(), c.perOp())
		var okShare *bool
		tgt := ""
		if p.share > 0 {
			ok := x.perOp() <= p.share*c.perOp()
			okShare = &ok
			tgt = map[bool]string{true: "≤ the cf CLI's", false: "≤ half the cf CLI's"}[p.share == 1]
		}
		b.add(fmt.Sprintf("%s: job requests per operation", p.label), figure, tgt, okShare)
		b.add(fmt.Sprintf("%s: cf CLI lateness per operation", p.label), lc.fmt("ms", 0), "", nil)
		b.add(fmt.Sprintf("%s: wall time of the flow", p.label), fmt.Sprintf("xsprov %.1f s, cf CLI %.1f s", xWall.Seconds(), cWall.Seconds()), "", nil)
	}
	_, err := b.ctl(http.MethodPut, "/_sim/timing?profile=instant")
	return err
}

// cfUp is the cf CLI's part of an `up`: create the instance and a key,
// waiting for each, with a CF_HOME of its own.
func (b *bench) cfUp(cf, name string) (time.Duration, error) {
	home, _ := os.MkdirTemp(b.work, "cfhome-")
	params := filepath.Join(home, "xs.json")
	_ = os.WriteFile(params, []byte(`{"xsappname":"`+name+`","tenant-mode":"dedicated"}`), 0o600)
	run := func(args ...string) error {
		cmd := exec.Command(cf, args...)
		cmd.Env = append(os.Environ(), "CF_HOME="+home, "CF_COLOR=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cf %s: %v: %s", args[0], err, out)
		}
		return nil
	}
	for _, args := range [][]string{{"api", b.simURL}, {"auth", "admin", "admin-secret"}, {"target", "-o", "acme", "-s", "dev"}} {
		if err := run(args...); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := run("create-service", "xsuaa", "application", name, "-c", params, "--wait"); err != nil {
		return 0, err
	}
	if err := run("create-service-key", name, name+"-key", "--wait"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// fleet measures apply at scale: 100 instances with keys on an asynchronous
// broker at the CC's default cadence, and 1,000 on a 300 ms synchronous one,
// with their no-change re-run.
func (b *bench) fleet() error {
	write := func(file, prefix string, n int) (string, error) {
		var sb strings.Builder
		sb.WriteString("apiVersion: xsprov/v1\ninstances:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "  - name: %s-%04d\n    space: dev\n    parameters: {xsappname: %s-%04d}\n    keys: [{name: %s-%04d-key, out: %s-%04d.json}]\n", prefix, i, prefix, i, prefix, i, prefix, i)
		}
		p := filepath.Join(b.work, file)
		return p, os.WriteFile(p, []byte(sb.String()), 0o600)
	}
	step("apply of 100 instances with keys, asynchronous broker 20 s, CC polls every 60 s")
	spec, err := write("fleet-async.yaml", "fa", 100)
	if err != nil {
		return err
	}
	if _, err := b.ctl(http.MethodPut, "/_sim/timing?async=true&cc_poll_interval=60s&worker_delay=500ms"); err != nil {
		return err
	}
	if _, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=20s"); err != nil {
		return err
	}
	s, err := b.xsprov(nil, "apply", "-f", spec, "--parallel", "100")
	if err != nil {
		return err
	}
	bound := 121.0 // a create and a key, each ending at the CC poll after 20 s (+ the worker's delay)
	cc := s.reqs - s.logins
	ok := cc <= 400
	b.add("fleet: `apply` of 100 instances with keys and files, async 20 s broker, CC polls every 60 s: Cloud Controller requests", fmt.Sprintf("%d (%d writes; and %d logins at the UAA, one per worker)", cc, s.writes, s.logins), "≤ 400", &ok)
	ok = s.wall.Seconds() <= 1.2*bound
	b.add("fleet: the same, wall time", fmt.Sprintf("%.1f s (broker bound %.0f s)", s.wall.Seconds(), bound), "≤ 1.2 × bound", &ok)
	if _, err := b.ctl(http.MethodPut, "/_sim/timing?profile=instant"); err != nil {
		return err
	}

	step("apply of 1,000 instances with keys at --parallel 100, broker 300 ms")
	spec, err = write("fleet-1000.yaml", "fk", 1000)
	if err != nil {
		return err
	}
	if _, err := b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=300ms"); err != nil {
		return err
	}
	// --no-verify: a verification is a third operation per instance (a
	// token from XSUAA), whose RSA signature costs the simulator's share of
	// the same 2 cores; the bound is the broker's two.
	s, err = b.xsprov(nil, "apply", "-f", spec, "--parallel", "100", "--no-verify")
	if err != nil {
		return err
	}
	bound = 1000 / 100 * 0.6
	ok = s.wall.Seconds() <= 1.2*bound
	b.add("fleet: `apply --no-verify` of 1,000 instances with keys at --parallel 100, broker 300 ms", fmt.Sprintf("%.1f s (bound %.0f s), %d requests", s.wall.Seconds(), bound, s.reqs), "≤ 1.2 × bound", &ok)
	ok = float64(s.rssKB)/1024 <= 60
	b.add("fleet: peak RSS of that `apply`", fmt.Sprintf("%.1f MB", float64(s.rssKB)/1024), "≤ 60 MB", &ok)
	re, err := b.xsprov(nil, "apply", "-f", spec, "--parallel", "100")
	if err != nil {
		return err
	}
	ok = re.reqs <= 1100 && re.wall <= 3*time.Second && re.writes == 0
	b.add("fleet: no-change re-run of the 1,000 (requests, writes, wall time)", fmt.Sprintf("%d requests, %d writes, %.2f s", re.reqs, re.writes, re.wall.Seconds()), "≤ 1,100, 0 writes, ≤ 3 s", &ok)
	_, err = b.ctl(http.MethodPut, "/_sim/delay?op=all&duration=0s")
	return err
}
