package apply

// What a plan finds about credentials files: whether a key's file would be
// created or updated, and whether it holds what the key would write.

import (
	"context"
	"os"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/spec"
)

// fileAction is writing a file: an update when it exists, else a create.
func fileAction(path string) Action {
	if fileExists(path) {
		return ActUpdate
	}
	return ActCreate
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fileDiffers compares a key's credentials file with what would be written.
// It returns the credentials it read, so that apply need not read them again.
func (w *Runner) fileDiffers(ctx context.Context, k *resource.ServiceCredentialBinding, sk *spec.Key, in *spec.Instance) (bool, string, map[string]any) {
	prev, err := os.ReadFile(sk.Out)
	if err != nil {
		return true, "the file is missing", nil
	}
	det, err := w.s.CF.ServiceCredentialBindings.GetDetails(ctx, k.GUID)
	if err != nil {
		return true, "the key's credentials cannot be read: " + err.Error(), nil
	}
	out := specOutput(sk, in)
	want, err := credfile.Render(det.Credentials, out)
	if err == nil && credfile.Shared(out.Format) {
		want, err = credfile.Merge(prev, want, out)
	}
	if err != nil || string(want) != string(prev) {
		return true, "the file differs from the key's credentials", det.Credentials
	}
	return false, "", nil
}

func specOutput(k *spec.Key, in *spec.Instance) credfile.Output {
	return credfile.Output{Path: k.Out, Format: k.Format, EnvPrefix: k.EnvPrefix, Instance: in.Name, Offering: in.Offering, Plan: in.Plan}
}
