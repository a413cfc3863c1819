//go:build tools

// Package cfcli pins the cf CLI used by the interoperability test. It is a
// module of its own so that xsprov's go.mod stays free of the CLI's
// dependencies. Build it with scripts/build-cf.
package cfcli

import _ "code.cloudfoundry.org/cli/v8"
