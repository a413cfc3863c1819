// Command xsprov provisions SAP XSUAA service instances and keys on Cloud
// Foundry and writes their credentials safely. See README.md. Installed with
// `cf install-plugin`, the same binary runs as `cf xsprov …` (cfplugin.go).
package main

import "os"

func main() {
	if pluginMode(os.Args[1:]) {
		os.Exit(PluginMain())
	}
	os.Exit(Main(os.Args[1:], System(), os.Getenv))
}
