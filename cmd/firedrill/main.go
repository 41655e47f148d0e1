// Command firedrill proves that backups restore: it takes application-consistent snapshots,
// restores them into throwaway databases, verifies them, and reports against RPO and RTO.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/moby/sys/reexec"
)

func main() {
	// firedrill re-executes itself as the init process of a drill's sandbox
	// (restore/runtime/local/sandbox): that must happen before anything else runs.
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
