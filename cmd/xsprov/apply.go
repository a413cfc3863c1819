package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/apply"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/templates"
)

// SpecOptions are the inputs of apply, plan and destroy.
type SpecOptions struct {
	Target           targetFlags
	File             string
	Vars             []string
	Parallel         int
	Prune, Adopt     bool
	Shard            string
	JSON             bool
	DetailedExitCode bool
	Yes              bool
	DeleteSpaces     bool
	NoVerify         bool
	AllowOutside     bool
	// Out saves the plan (plan); PlanFile is a saved plan to apply (apply).
	Out, PlanFile string

	shard, shards int
}

func (o *SpecOptions) register(cmd *cobra.Command, which string) {
	o.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&o.File, "file", "f", "", "the onboarding spec (YAML, apiVersion xsprov/v1)")
	fl.StringArrayVar(&o.Vars, "var", nil, "override a spec variable NAME=VALUE (repeatable)")
	fl.IntVar(&o.Parallel, "parallel", 8, "how many instances to work on at once")
	fl.BoolVar(&o.AllowOutside, "allow-outside-paths", false, "let keys write credentials files outside the spec's folder")
	fl.StringVar(&o.Shard, "shard", "", "work on shard I of N of the spec's instances (I/N, e.g. 2/4), for a CI matrix")
	fl.BoolVar(&o.JSON, "json", false, "print a machine-readable report on stdout")
	if which != "destroy" {
		fl.BoolVar(&o.Prune, "prune", false, "delete instances and keys labelled by this spec that it no longer lists")
		fl.BoolVar(&o.Adopt, "adopt", false, "take over existing unlabelled instances of the same name")
	}
	switch which {
	case "plan":
		fl.BoolVar(&o.DetailedExitCode, "detailed-exitcode", false, "exit 0 without changes, 2 with changes, 1 on error")
		fl.StringVar(&o.Out, "out", "", "save the plan to FILE, for 'xsprov apply FILE' (mode 0600, no secrets)")
	case "apply":
		fl.BoolVar(&o.NoVerify, "no-verify", false, "do not prove written credentials with a token")
		fl.BoolVarP(&o.Yes, "yes", "y", false, "make updates that remove or replace parts of a descriptor (the plan shows them)")
	case "destroy":
		fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
		fl.BoolVar(&o.DeleteSpaces, "delete-spaces", false, "also delete the spaces this spec created")
	}
}

func (o *SpecOptions) validate() error {
	if o.PlanFile != "" && o.File != "" {
		return flagErrorf("give either a saved plan or -f SPEC, not both")
	}
	if o.File == "" && o.PlanFile == "" {
		return flagErrorf("-f SPEC is required")
	}
	if o.Parallel < 1 || o.Parallel > 256 {
		return flagErrorf("--parallel must be between 1 and 256, got %d", o.Parallel)
	}
	if o.Shard != "" {
		i, n, ok := strings.Cut(o.Shard, "/")
		a, err1 := strconv.Atoi(i)
		b, err2 := strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || b < 1 || a < 1 || a > b {
			return flagErrorf("--shard %q: want I/N with 1 ≤ I ≤ N, e.g. 2/4", o.Shard)
		}
		o.shard, o.shards = a, b
	}
	return nil
}

func newSpecCmd(f *Factory, which string, runF func(context.Context, *SpecOptions) error) *cobra.Command {
	opts := &SpecOptions{}
	short := map[string]string{
		"apply":   "Converge spaces, instances, keys and credentials files to an onboarding spec",
		"plan":    "Show what apply would change, with redacted parameter diffs",
		"destroy": "Delete the keys, instances and files a spec owns (spaces with --delete-spaces)",
	}[which]
	cmd := &cobra.Command{
		Use:   which + " -f SPEC",
		Short: short,
		Long: short + `.

The spec is checked before any request: unknown fields, types, references,
templates, variables and every descriptor, each problem with file, line and
column (exit 2). Target: --api/--org, else the spec's target, else CF_API/CF_ORG,
else the cf CLI's target. Instances and keys a spec creates carry the label
` + spec.OwnerLabel + `=<metadata.name>; --prune and destroy only touch
resources with that label, and an existing unlabelled instance is taken over
only with --adopt.`,
		Example: map[string]string{
			"apply":   "  xsprov apply -f onboarding.yaml --parallel 20\n  xsprov apply -f onboarding.yaml --shard 2/4   # one job of a 4-way CI matrix",
			"plan":    "  xsprov plan -f onboarding.yaml --detailed-exitcode",
			"destroy": "  xsprov destroy -f onboarding.yaml --yes",
		}[which],
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.PlanFile = args[0]
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return specRun(cmd.Context(), f, which, opts)
		},
	}
	opts.register(cmd, which)
	if which == "apply" {
		cmd.Use = "apply (-f SPEC | PLANFILE)"
		cmd.Args = cobra.MaximumNArgs(1)
		cmd.Example += "\n  xsprov plan -f onboarding.yaml --out reviewed.plan && xsprov apply reviewed.plan   # exactly the reviewed plan"
	}
	return cmd
}

func specRun(ctx context.Context, f *Factory, which string, o *SpecOptions) error {
	var saved *savedPlan
	if o.PlanFile != "" {
		var err error
		if saved, err = readPlan(o.PlanFile, o); err != nil {
			return err
		}
		// the plan showed its changes, removals too: applying it is the yes
		o.Yes = true
	}
	vars, err := templates.Vars(o.Vars, "", nil)
	if err != nil {
		return usage(err)
	}
	var loadOpts []spec.Option
	if o.AllowOutside {
		loadOpts = append(loadOpts, spec.AllowOutsidePaths())
	}
	spec, err := spec.Load(o.File, vars, loadOpts...)
	if err != nil {
		return err
	}
	t := o.Target
	if t.API == "" && spec.Target.API != "" {
		t.API = spec.Target.API
	}
	if t.Org == "" && spec.Target.Org != "" {
		t.Org = spec.Target.Org
	}
	s, err := f.resolveFor(t, false)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	verify := which == "apply" && !o.NoVerify && (spec.Defaults.Verify == nil || *spec.Defaults.Verify)
	approved := o.Yes
	runner := apply.New(c.sess, c.rep, func(s *cfapi.Session, r provision.Reporter, labels map[string]string) apply.Engine {
		return provision.New(s, provision.WithReporter(r), provision.WithVerify(verify, c.tokenOpts), provision.WithSecretsHook(f.mask), provision.WithLabels(labels),
			// parallel workers do not prompt: such updates need --yes
			provision.WithConsent(func(provision.Consent) bool { return approved }))
	})
	ao := apply.Options{Org: s.org, Parallel: o.Parallel, Prune: o.Prune, Adopt: o.Adopt, Shard: o.shard, Shards: o.shards, DeleteSpaces: o.DeleteSpaces}
	switch {
	case saved != nil:
		ao.Expect = saved.expect(c.sess.API, s.org)
	case which != "plan":
		// what removes or replaces is listed first and needs a yes
		ao.Expect = func(res *apply.Result) error {
			if err := f.approve(which, res, &approved); err != nil {
				return err
			}
			return nil
		}
	}
	var res *apply.Result
	switch which {
	case "plan":
		c.rep.Info(fmt.Sprintf("Planning %s for org %s as %s...\n", o.File, s.org, c.sess.User))
		res, err = runner.Plan(ctx, spec, ao)
	case "apply":
		c.rep.Info(fmt.Sprintf("Applying %s to org %s as %s...\n", o.File, s.org, c.sess.User))
		res, err = runner.Apply(ctx, spec, ao)
	case "destroy":
		c.rep.Info(fmt.Sprintf("Destroying what %s owns in org %s as %s...\n", o.File, s.org, c.sess.User))
		res, err = runner.Destroy(ctx, spec, ao)
	}
	if res == nil {
		return err
	}
	if which == "plan" && o.Out != "" && err == nil {
		if err := o.save(c.sess.API, s.org, vars, res); err != nil {
			return err
		}
		f.reporter().Info("Saved the plan to " + o.Out + "; 'xsprov apply " + o.Out + "' carries out exactly this plan.")
	}
	if which == "apply" {
		for _, ch := range res.Changes {
			if ch.Kind == "file" && ch.Result == "ok" {
				f.warnExposed(strings.TrimPrefix(ch.Address, "file "), nil)
			}
		}
	}
	if o.JSON {
		if jerr := writeJSONDoc(f.IO.Out, res); jerr != nil && err == nil {
			err = jerr
		}
	} else if which == "plan" {
		printPlan(f.IO.Out, res)
	} else {
		printReport(f.IO.Out, which, res)
	}
	switch {
	case err != nil:
		return err
	case which == "plan" && res.Failed > 0:
		return &silentError{code: exitFailure}
	case which == "plan" && o.DetailedExitCode && res.HasChanges():
		return changesPending{}
	case which != "plan" && res.Failed > 0:
		if !o.JSON {
			fmt.Fprintf(f.IO.ErrOut, "%d item(s) failed; re-running %s does only what is left.\n", res.Failed, which)
		}
		return &silentError{code: exitFailure}
	}
	return nil
}

var actionSymbol = map[apply.Action]string{
	apply.ActCreate: "  +", apply.ActUpdate: "  ~", apply.ActRecreate: "-/+", apply.ActRotate: "  ~",
	apply.ActAdopt: "  ~", apply.ActDelete: "  -", apply.ActWait: "  …", apply.ActError: "  !",
}

func printPlan(w io.Writer, r *apply.Result) {
	for _, c := range r.Changes {
		if !c.Changed() {
			continue
		}
		line := fmt.Sprintf("%s %-9s %s", actionSymbol[c.Action], c.Action, c.Address)
		if c.Reason != "" {
			line += "  (" + reasonText(c) + ")"
		}
		fmt.Fprintln(w, line)
		for _, d := range c.Diff {
			fmt.Fprintln(w, "                "+d.String())
		}
	}
	for _, p := range r.Pairs {
		fmt.Fprintf(w, "  = pair      %s (identity) joined to %s (xsuaa) by xsuaa-cross-consumption; applied after it\n", strings.TrimPrefix(p.IAS, "instance "), strings.TrimPrefix(p.XSUAA, "instance "))
	}
	fmt.Fprintln(w, "Plan: "+summaryLine(r.Summary, []apply.Action{apply.ActCreate, apply.ActUpdate, apply.ActRecreate,
		apply.ActRotate, apply.ActAdopt, apply.ActDelete, apply.ActWait, apply.ActError, apply.ActNoop})+".")
}

func summaryLine(m map[string]int, order []apply.Action) string {
	var parts []string
	for _, k := range order {
		if n := m[string(k)]; n > 0 {
			label := map[apply.Action]string{apply.ActNoop: "unchanged", apply.ActError: "in error", apply.ActWait: "to wait for"}[k]
			if label == "" {
				label = "to " + string(k)
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, label))
		}
	}
	if len(parts) == 0 {
		return "nothing in the spec"
	}
	return strings.Join(parts, ", ")
}

func printReport(w io.Writer, which string, r *apply.Result) {
	width := 4
	for _, c := range r.Changes {
		if len(c.Address) > width {
			width = len(c.Address)
		}
	}
	fmt.Fprintf(w, "%-*s  %-9s  %s\n", width, "ITEM", "ACTION", "RESULT")
	counts := map[string]int{}
	for _, c := range r.Changes {
		result := c.Result
		if result == "" {
			result = "unchanged"
			if c.Action == apply.ActError {
				result = "failed"
			}
		}
		counts[result]++
		detail := result
		if c.Error != "" {
			detail += ": " + firstLine(c.Error)
		} else if c.Reason != "" {
			detail += " (" + reasonText(c) + ")"
		}
		fmt.Fprintf(w, "%-*s  %-9s  %s\n", width, c.Address, c.Action, detail)
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	title := strings.ToUpper(which[:1]) + which[1:]
	fmt.Fprintf(w, "%s: %s.\n", title, strings.Join(parts, ", "))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// reasonText is a change's reason with the face's wording of its hint.
func reasonText(c *apply.Change) string {
	switch h := hintText(remedy.Remedy{Action: c.Hint}); {
	case c.Hint == remedy.Confirm:
		return c.Reason + "; apply needs --yes"
	case c.Hint == remedy.Pruned:
		return c.Reason + " (" + h + ")"
	case h != "":
		return c.Reason + "; " + h
	}
	return c.Reason
}

// save writes the plan for a later apply.
func (o *SpecOptions) save(api, org string, vars map[string]string, res *apply.Result) error {
	abs, err := filepath.Abs(o.File)
	if err != nil {
		return err
	}
	digest, err := specDigest(abs)
	if err != nil {
		return err
	}
	return writePlan(o.Out, &savedPlan{FormatVersion: provision.FormatVersion, Kind: planKind, Spec: abs, SpecSHA256: digest, Vars: vars,
		API: api, Org: org, Changes: res.Changes,
		Options: savedOptions{Parallel: o.Parallel, Prune: o.Prune, Adopt: o.Adopt, Shard: o.shard, Shards: o.shards, AllowOutside: o.AllowOutside}})
}

// approve lists the deletions, adoptions and removing updates a run would
// make and asks for a yes (a terminal), or takes --yes (approved); without
// either nothing is sent.
func (f *Factory) approve(which string, res *apply.Result, approved *bool) error {
	var risky []*apply.Change
	for _, c := range res.Changes {
		if c.Action == apply.ActDelete || c.Action == apply.ActAdopt && len(c.Diff) > 0 || c.Hint == remedy.Confirm {
			risky = append(risky, c)
		}
	}
	if len(risky) == 0 || *approved {
		return nil
	}
	rep := f.reporter()
	rep.Warn(fmt.Sprintf("%s would remove or replace:", which))
	for _, c := range risky {
		line := "  " + string(c.Action) + " " + c.Address
		if c.Reason != "" {
			line += " (" + c.Reason + ")"
		}
		rep.Info(line)
		for _, d := range c.Diff {
			rep.Info("      " + d.String())
		}
	}
	if err := confirm(f, false, "Go ahead?"); err != nil {
		return err
	}
	*approved = true
	return nil
}
