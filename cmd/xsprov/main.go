// Command xsprov provisions SAP XSUAA service instances and keys on Cloud
// Foundry and writes their credentials safely. See README.md.
package main

import "os"

func main() {
	os.Exit(Main(os.Args[1:], System(), os.Getenv))
}
