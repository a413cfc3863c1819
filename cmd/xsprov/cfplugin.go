package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"code.cloudfoundry.org/cli/v8/plugin"
)

// The same binary is a cf CLI plugin: `cf install-plugin xsprov` installs
// it, and `cf xsprov up my-xsuaa` runs it with the API endpoint, access
// token, org and space of the running cf session, asked over the cf CLI's
// plugin RPC (code.cloudfoundry.org/cli/v8/plugin, which needs nothing
// beyond the standard library). cf starts a plugin as
// `binary PORT SendMetadata` (install, `cf plugins`), `binary PORT xsprov
// ARGS…` (a command) or `binary PORT CLI-MESSAGE-UNINSTALL`.

// pluginCommand is the cf command the plugin adds: `cf xsprov …`.
const pluginCommand = "xsprov"

// pluginMode tells whether cf started this binary as its plugin.
func pluginMode(args []string) bool {
	if len(args) < 2 {
		return false
	}
	if _, err := strconv.ParseUint(args[0], 10, 16); err != nil {
		return false
	}
	return args[1] == "SendMetadata" || args[1] == pluginCommand || args[1] == "CLI-MESSAGE-UNINSTALL"
}

// pluginSession is what the running cf CLI lends: its target and token.
type pluginSession struct {
	api, token, org, space string
	skipSSL                bool
}

type cfPlugin struct{ code int }

// PluginMain runs xsprov as a cf CLI plugin and returns the exit code.
func PluginMain() int {
	p := &cfPlugin{}
	plugin.Start(p) // exits by itself for SendMetadata
	return p.code
}

func (p *cfPlugin) GetMetadata() plugin.PluginMetadata {
	return plugin.PluginMetadata{
		Name:    "xsprov",
		Version: semver(buildInfo().Version),
		// cf v7+ for the v3 API and AccessToken over RPC
		MinCliVersion: plugin.VersionType{Major: 7},
		Commands: []plugin.Command{{
			Name:     pluginCommand,
			HelpText: "Provision SAP XSUAA instances and keys, and write their credentials safely",
			UsageDetails: plugin.Usage{
				Usage: "cf xsprov COMMAND [ARGS] [FLAGS]\n   cf xsprov up my-xsuaa --xsappname my-app\n   cf xsprov --help",
			},
		}},
	}
}

func (p *cfPlugin) Run(conn plugin.CliConnection, args []string) {
	if len(args) == 0 || args[0] != pluginCommand {
		return // CLI-MESSAGE-UNINSTALL: nothing to clean up
	}
	ps, err := sessionFrom(conn)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: the cf CLI session: %v\nHint: log in with 'cf login' (and 'cf target -o ORG -s SPACE') first\n", err)
		p.code = exitAuth
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	getenv := func(k string) string {
		switch k {
		case "CF_API":
			return ps.api
		case "CF_ORG":
			return ps.org
		case "CF_SPACE":
			return ps.space
		}
		return os.Getenv(k)
	}
	p.code = run(ctx, args[1:], &Factory{IO: System(), Getenv: getenv, plugin: ps})
}

// sessionFrom asks the cf CLI for its endpoint, a fresh access token and
// its target.
func sessionFrom(conn plugin.CliConnection) (*pluginSession, error) {
	ps := &pluginSession{}
	var err error
	if ps.api, err = conn.ApiEndpoint(); err != nil || ps.api == "" {
		return nil, fmt.Errorf("no API endpoint (cf api URL): %v", err)
	}
	if ps.token, err = conn.AccessToken(); err != nil || strings.TrimSpace(ps.token) == "" {
		return nil, fmt.Errorf("not logged in: %v", err)
	}
	if o, err := conn.GetCurrentOrg(); err == nil {
		ps.org = o.Name
	}
	if s, err := conn.GetCurrentSpace(); err == nil {
		ps.space = s.Name
	}
	ps.skipSSL, _ = conn.IsSSLDisabled()
	return ps, nil
}

// semver reads "1.2.3" (or "v1.2.3-rc1") into cf's version type.
func semver(v string) plugin.VersionType {
	v = strings.TrimPrefix(v, "v")
	var n [3]int
	for i, part := range strings.SplitN(v, ".", 3) {
		digits := part
		if j := strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			digits = part[:j]
		}
		n[i], _ = strconv.Atoi(digits)
	}
	return plugin.VersionType{Major: n[0], Minor: n[1], Build: n[2]}
}
