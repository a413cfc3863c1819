package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/xsprov/xsprov/provision/remedy"
)

// hintText words a remedy from the core: the command and flag names live
// here, not in the core.
func hintText(r remedy.Remedy) string {
	var h string
	switch r.Action {
	case remedy.Recreate:
		if len(r.Keep) > 0 {
			var keep []string
			for _, f := range slices.Sorted(maps.Keys(r.Keep)) {
				keep = append(keep, "--"+f+" "+r.Keep[f])
			}
			h = "pass " + strings.Join(keep, " ") + " to keep the instance as it is, or "
		}
		h += "run 'xsprov recreate " + r.Instance + "' to delete and create it again (its keys and credentials change)"
		if len(r.Changes) > 0 {
			h += "; the broker could apply the other change(s) in place:"
			for _, c := range r.Changes {
				h += "\n  " + c
			}
		}
	case remedy.Create:
		h = "create it with 'xsprov up " + r.Instance + "'"
	case remedy.RereadCredentials:
		h = "the key may have been deleted or rotated; run 'xsprov creds INSTANCE' to re-read the current one"
	case remedy.ReplaceBrokenKey:
		h = "delete it ('xsprov down --keep-instance') and run 'xsprov up' again"
	case remedy.OtherPlan:
		h = "name the instance's plan with --plan, or replace the instance with 'xsprov recreate'"
	case remedy.ChooseBroker:
		h = "choose one with --broker"
	case remedy.CheckOffering:
		h = "check the offering name (--offering) and the entitlements of your subaccount"
	case remedy.ChoosePlan:
		h = "plans visible there: " + strings.Join(r.Names, ", ") + " (choose one with --plan, or ask an admin to enable the plan)"
	case remedy.SetTarget:
		h = "use --org and --space, set CF_ORG and CF_SPACE, or run 'cf target -o ORG -s SPACE'"
	case remedy.Login:
		h = "log in: set CF_CLIENT_ID and CF_CLIENT_SECRET (CI), or CF_USERNAME and CF_PASSWORD, or run 'cf login'"
	case remedy.CheckLogin:
		h = "check CF_CLIENT_ID/CF_CLIENT_SECRET or CF_USERNAME/CF_PASSWORD (and --origin), or run 'cf login' again"
	case remedy.SetClientSecret:
		h = "set CF_CLIENT_SECRET or --client-secret-file"
	case remedy.SetPassword:
		h = "set CF_PASSWORD"
	case remedy.CheckAPI:
		h = "check --api / CF_API and your network"
	case remedy.RequestRole:
		h = "your user or client lacks the role for this; ask for SpaceDeveloper in the target space"
	case remedy.CheckTokenUser:
		h = "check --username and XSUAA_PASSWORD"
	case remedy.CheckTokenURL:
		h = "check the url/certurl in the credentials and your network"
	case remedy.RotateAgain:
		h = "run 'xsprov rotate' again later"
		if len(r.Names) > 0 {
			h += ", or delete them with 'cf delete-service-key " + r.Instance + " KEY -f'"
		}
	case remedy.DeleteKeys:
		h = "delete it with 'cf delete-service-key " + r.Instance + " " + strings.Join(r.Names, " ") + " -f'"
	case remedy.Adopt:
		h = "adopt it with --adopt"
	case remedy.GiveWholeDescriptor:
		h = "give the whole descriptor with --params FILE (or --template); the fields given alone would replace it"
	case remedy.MoveOffInstanceSecret:
		h = "let the instance issue binding-secret (or x509) keys: put it first in oauth2-configuration.credential-types of its descriptor and apply that with 'xsprov up " + r.Instance + " --params FILE', then rotate"
		if len(r.Names) > 0 {
			h += "; delete the leftover key with 'cf delete-service-key " + r.Instance + " " + r.Names[0] + " -f'"
		}
	case remedy.Confirm:
		h = "the change is shown above; run again with --yes to make it"
	case remedy.AllowOutsidePaths:
		h = "keep the files in the spec's folder, or pass --allow-outside-paths"
	case remedy.UseX509:
		h = "--format pem needs a key made with --credential-type x509"
	case remedy.Pruned:
		return "--prune"
	case remedy.CrossConsumption:
		h = "XSUAA takes IAS tokens only from an IAS application of the same subaccount with \"xsuaa-cross-consumption\": true (the ias-xsuaa template sets it); apply that with 'xsprov up IAS-INSTANCE --offering identity --params FILE'"
	case remedy.TrustCA:
		h = "trust its CA with --cacert FILE (xsprov sim serves its CA at /_sim/ca.pem), or skip the check with --skip-ssl-validation (labs only)"
	}
	switch {
	case r.Note == "":
		return h
	case h == "":
		return r.Note
	}
	return r.Note + "; " + h
}
