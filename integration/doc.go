// Package integration holds end-to-end tests of the firedrill binary against real components
// started by the harness (integration/harness).
package integration
