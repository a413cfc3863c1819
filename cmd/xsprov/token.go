package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/infile"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/xsuaa"
)

// TokenOptions are the inputs of `xsprov token`.
type TokenOptions struct {
	Target    targetFlags
	Instance  string
	Key       string
	CredsFile string
	Grant     string
	Username  string
	Scopes    []string
	Header    bool
	Check     bool
	JSON      bool
	ShowToken bool
	// Exchange names XSUAA credentials (a file, or an instance in the
	// target) to exchange the IAS token for an XSUAA one with.
	Exchange string
}

func newTokenCmd(f *Factory, runF func(context.Context, *TokenOptions) error) *cobra.Command {
	opts := &TokenOptions{}
	cmd := &cobra.Command{
		Use:   "token [INSTANCE | --creds FILE]",
		Short: "Get an OAuth access token with a key's credentials",
		Long: `Get an access token from XSUAA with the credentials of a key: the client
credentials grant at {url}/oauth/token for secret keys, or at {certurl}/oauth/token
over mutual TLS for x509 keys. The credentials come from a file (--creds) or are
read from the instance's current key in Cloud Foundry (INSTANCE).

Prints the access token on stdout; --header prints "Authorization: Bearer …" for
curl; --check prints only client id, scopes, expiry and zone, never the token.
--grant password gets a token on behalf of a user (--username, password from
XSUAA_PASSWORD or a prompt on a terminal). Refusals by the token endpoint exit 4.

For an IAS key (offering identity) the token comes from {url}/oauth2/token.
--exchange XSUAA then trades that IAS token for an XSUAA token at the XSUAA
credentials' {url}/oauth/token with the jwt-bearer grant, as a CAP application
in hybrid mode does; XSUAA takes it only from an IAS application of the same
subaccount with xsuaa-cross-consumption: true. XSUAA is a credentials file, or
an instance of the target whose key is read.`,
		Example: `  curl -H "$(xsprov token --creds my-xsuaa-credentials.json --header)" https://my-api.example.com/
  xsprov token my-xsuaa --check
  XSUAA_PASSWORD=… xsprov token --creds my-xsuaa-credentials.json --grant password --username jane@example.com
  xsprov token --creds my-ias-credentials.json --exchange my-xsuaa-credentials.json --check`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return flagErrorf("expected at most one INSTANCE, got %d arguments", len(args))
			case len(args) == 1 && opts.CredsFile != "":
				return flagErrorf("give either INSTANCE or --creds, not both")
			case len(args) == 0 && opts.CredsFile == "":
				return flagErrorf("expected INSTANCE or --creds FILE")
			case len(args) == 1:
				opts.Instance = args[0]
			}
			if opts.Grant != "client_credentials" && opts.Grant != "password" {
				return flagErrorf("--grant %q is not one of client_credentials, password", opts.Grant)
			}
			if opts.Grant == "password" && opts.Username == "" {
				return flagErrorf("--grant password needs --username")
			}
			if opts.Grant != "password" && opts.Username != "" {
				return flagErrorf("--username applies to --grant password only")
			}
			if n := btoi(opts.Header) + btoi(opts.Check) + btoi(opts.JSON); n > 1 {
				return flagErrorf("--header, --check and --json exclude each other")
			}
			if opts.ShowToken && !opts.JSON {
				return flagErrorf("--show-token applies to --json only")
			}
			if opts.Exchange != "" && opts.Grant != "client_credentials" {
				return flagErrorf("--exchange works on a client_credentials token of an IAS key")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return tokenRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.CredsFile, "creds", "", "credentials file written by xsprov (json, env, yaml, default-env)")
	fl.StringVar(&opts.Key, "key", "", "service key name, with INSTANCE (default INSTANCE-key, or its newest rotation)")
	fl.StringVar(&opts.Grant, "grant", "client_credentials", "grant type: client_credentials or password")
	fl.StringVar(&opts.Username, "username", "", "user for --grant password (password from XSUAA_PASSWORD or a prompt)")
	fl.StringArrayVar(&opts.Scopes, "scope", nil, "request only this scope (repeatable)")
	fl.BoolVar(&opts.Header, "header", false, `print "Authorization: Bearer <token>"`)
	fl.BoolVar(&opts.Check, "check", false, "print client id, scopes, expiry and zone; never the token")
	fl.BoolVar(&opts.JSON, "json", false, "print what --check prints as JSON (the token only with --show-token)")
	fl.BoolVar(&opts.ShowToken, "show-token", false, "include the access token in --json")
	fl.StringVar(&opts.Exchange, "exchange", "", "exchange the (IAS) token for an XSUAA token with these XSUAA credentials: a file, or an instance of the target")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func loadCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := infile.Read(path, infile.Document)
	if err != nil {
		return nil, flagErrorf("--cacert: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, flagErrorf("--cacert %s holds no PEM certificate", path)
	}
	return pool, nil
}

func tokenRun(ctx context.Context, f *Factory, o *TokenOptions) error {
	roots, err := loadCAs(o.Target.CACert)
	if err != nil {
		return err
	}
	tlsOpts := xsuaa.TLSOptions{RootCAs: roots, SkipVerify: o.Target.SkipSSL}
	password := ""
	if o.Grant == "password" {
		if password = f.getenv("XSUAA_PASSWORD"); password == "" {
			if !f.IO.CanPrompt() {
				return cfapi.Usagef("--grant password: set XSUAA_PASSWORD (no terminal to ask on)")
			}
			if password, err = f.IO.ReadSecret("Password for " + o.Username + ": "); err != nil {
				return err
			}
		}
	}
	if o.Target.Timeout <= 0 {
		return flagErrorf("--timeout must be positive, got %s", o.Target.Timeout)
	}
	// --timeout covers every network step of the command, the token
	// request included.
	ctx, cancel := withTimeout(ctx, o.Target.Timeout)
	defer cancel()
	wrap := cfapi.HTTPOptions{Clock: f.Clock, AllowInsecureHTTP: o.Target.AllowInsecure}.Wrap
	// instanceCreds reads the current key of an instance of the target,
	// connecting once however many instances are read (--api sim starts
	// one simulator).
	var c *conn
	var s *settings
	instanceCreds := func(instance, key string) (map[string]any, error) {
		if c == nil {
			var err error
			if s, err = f.resolve(o.Target); err != nil {
				return nil, err
			}
			if c, err = f.connect(ctx, s); err != nil {
				return nil, err
			}
			wrap = c.httpOpts.Wrap
			if f.simCA != nil {
				tlsOpts.RootCAs = f.simCA
			}
		}
		res, err := c.engine(false, nil).Creds(ctx, provision.CredsRequest{Ref: provision.Ref{Org: s.org, Space: s.space, Instance: instance}, Key: key})
		if err != nil {
			return nil, err
		}
		return res.Credentials(), nil
	}
	var creds map[string]any
	if o.CredsFile != "" {
		creds, err = credfile.ReadCredentials(o.CredsFile)
	} else {
		creds, err = instanceCreds(o.Instance, o.Key)
	}
	if err != nil {
		return err
	}
	// the credentials to exchange with, before any token request
	var xs map[string]any
	if o.Exchange != "" {
		if offering.OfCredentials(creds).Name != offering.Identity.Name {
			return cfapi.Usagef("--exchange trades an IAS token for an XSUAA one: the credentials given are not an IAS key's (offering identity)")
		}
		if xs, err = exchangeCreds(o.Exchange, instanceCreds); err != nil {
			return err
		}
	}
	xopts := xsuaa.Options{TLS: tlsOpts, Wrap: wrap, Now: f.now, CheckURL: urlCheck(o.Target.AllowInsecure)}
	tok, err := xsuaa.FetchToken(ctx, xsuaa.TokenRequest{Creds: creds, Grant: o.Grant, Username: o.Username, Password: password, Scopes: o.Scopes}, xopts)
	if err != nil {
		return err
	}
	if xs != nil {
		f.mask([]string{tok.AccessToken})
		if tok, err = xsuaa.FetchToken(ctx, xsuaa.TokenRequest{Creds: xs, Grant: xsuaa.JWTBearer, Assertion: tok.AccessToken, Scopes: o.Scopes}, xopts); err != nil {
			return err
		}
	}
	f.mask([]string{tok.AccessToken})
	switch {
	case o.JSON:
		doc := struct {
			FormatVersion string `json:"format_version"`
			*xsuaa.Token
			AccessToken string `json:"access_token,omitempty"`
		}{provision.FormatVersion, tok, ""}
		if o.ShowToken {
			doc.AccessToken = tok.AccessToken
		}
		return writeJSONDoc(f.IO.Out, doc)
	case o.Check:
		printTokenCheck(f.IO.Out, tok)
	case o.Header:
		fmt.Fprintf(f.IO.Out, "Authorization: Bearer %s\n", tok.AccessToken)
	default:
		fmt.Fprintln(f.IO.Out, tok.AccessToken)
	}
	return nil
}

// exchangeCreds reads the XSUAA credentials of --exchange: a file, else the
// key of that instance in the target (through instanceCreds).
func exchangeCreds(arg string, instanceCreds func(instance, key string) (map[string]any, error)) (map[string]any, error) {
	if _, err := os.Stat(arg); err == nil {
		return credfile.ReadCredentials(arg)
	}
	if err := checkInstanceName(arg); err != nil {
		return nil, flagErrorf("--exchange %q is neither a credentials file nor an instance name", arg)
	}
	creds, err := instanceCreds(arg, "")
	if err != nil {
		return nil, err
	}
	if offering.OfCredentials(creds).Name != offering.XSUAA.Name {
		return nil, cfapi.Usagef("--exchange %s: not an XSUAA instance's key", arg)
	}
	return creds, nil
}

func printTokenCheck(w io.Writer, t *xsuaa.Token) {
	row := func(k, v string) { fmt.Fprintf(w, "%-16s %s\n", k+":", v) }
	row("client id", t.ClientID)
	if t.UserName != "" {
		row("user", t.UserName)
	}
	row("grant", t.GrantType)
	row("scopes", strings.Join(t.Scopes, " "))
	row("expires", t.ExpiresAt.Format(time.RFC3339)+" (in "+time.Until(t.ExpiresAt).Round(time.Second).String()+")")
	row("zone", strings.TrimSpace(t.Zone+" "+t.ZoneID))
	row("endpoint", t.Endpoint)
	row("signature", map[bool]string{true: "verified with the key's verificationkey", false: "not verified (no verificationkey, or it does not match)"}[t.Verified])
}

// ReadSecret asks for a secret on the terminal without echo.
func (s *IOStreams) ReadSecret(prompt string) (string, error) {
	fmt.Fprint(s.ErrOut, prompt)
	if f, ok := s.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.ErrOut)
		return string(b), err
	}
	line, err := bufio.NewReader(s.In).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}
