package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/firedrill/firedrill/restore/demo"
)

// printKept tells what `demo --keep` left: where, the commands to try, and how to stop
// production (and start it again), exactly as this user must type them.
func printKept(w io.Writer, dir string, k demo.Kept, err error) {
	cfg := filepath.Join(dir, "firedrill.yaml")
	self := os.Args[0]
	if err != nil {
		fmt.Fprintf(w, "\nKept the sandbox in %s, but its production database could not be left running: %v\n", dir, err)
	} else {
		fmt.Fprintf(w, "\nKept the sandbox in %s; its production database is still running (pid %d).\n", dir, k.PID)
	}
	fmt.Fprintf(w, "Try:\n  %s snapshot -c %s\n  %s drill -c %s\n  %s audit -c %s\n", self, cfg, self, cfg, self, cfg)
	fmt.Fprintf(w, "Stop production with:\n  %s\nStart it again with:\n  %s\nThen remove the sandbox with: rm -rf %s\n", k.Stop, k.Start, dir)
}
