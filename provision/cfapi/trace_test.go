package cfapi

import (
	"strings"
	"testing"
)

// TestRedactAnyCase: secret field names are matched whatever their case.
func TestRedactAnyCase(t *testing.T) {
	cases := []string{
		`{"clientSecret":"s1","Password":"s2","privateKey":"s3","access_token":"s4","client_secret":"s5"}`,
		`grant_type=password&Password=s1&CLIENT_SECRET=s2&refresh_token=s3`,
	}
	for _, in := range cases {
		out := string(Redact([]byte(in)))
		for _, s := range []string{"s1", "s2", "s3", "s4", "s5"} {
			if strings.Contains(out, `"`+s+`"`) || strings.Contains(out, "="+s) {
				t.Errorf("%s shows %s: %s", in, s, out)
			}
		}
	}
}
