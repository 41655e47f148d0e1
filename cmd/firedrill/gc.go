package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/restore/drill"
)

// gcOptions are the flags of 'firedrill gc'.
type gcOptions struct {
	target string
	drill.GCOptions
}

func newGCCmd(g *globals) *cobra.Command {
	var o gcOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove what dead drills left: scratch directories, containers, Kubernetes objects",
		Long: `Find what drills left behind and remove what belongs to drills that are no longer running
(killed, crashed), for every target (or --target):

  - local scratch directories under restore.local.scratchDir: stop any server left running on
    them, release its shared memory, delete the copy of production data, and record the dead
    drill in the history as interrupted. A lock proves whether their drill still runs.
  - the target runtime's objects: Docker containers whose scratch directory is gone; in the
    Kubernetes scratch namespace, pods, ConfigMaps, NetworkPolicies, scratch PVCs and
    VolumeSnapshots, and their Retain VolumeSnapshotContents, all found by label.

Every drill does this for its own target before it starts; gc does it on demand. The table
(or JSON: "leftovers" for directories, "objects" for the runtimes' objects) says what was
removed, or with --dry-run what would be: a dry run stops, removes and records nothing.

Drills still running are listed and left alone. Throwaways kept with 'drill --keep' are listed
and left alone unless --include-kept: then their servers are stopped and they are removed too.

Kubernetes objects have no lock: only their age tells a crashed drill from one still running
elsewhere (another runner, a CronJob). A scheduled gc should pass --older-than longer than a
drill can take (e.g. --older-than 2h), so it cannot remove a drill that is still running.

Exit codes: 0 nothing left that should go; 2 usage or configuration error; 3 something could
not be stopped or removed (see its row or the error).`,
		Example: `  firedrill gc
  firedrill gc --dry-run
  firedrill gc --older-than 2h          # in a CronJob: never a drill that may still run
  firedrill gc --target orders --include-kept --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return runGC(cmd.Context(), g, o)
		},
	}
	bindGCFlags(cmd, &o)
	return cmd
}

func bindGCFlags(cmd *cobra.Command, o *gcOptions) {
	fs := cmd.Flags()
	fs.StringVarP(&o.target, "target", "t", "", "only this target's leftovers (default: every target's)")
	fs.BoolVar(&o.IncludeKept, "include-kept", false, "also stop and remove throwaways kept with 'drill --keep'")
	fs.DurationVar(&o.OlderThan, "older-than", 0, "only leftovers of drills that started at least this long ago, e.g. 2h (default 0: any age; Kubernetes objects have no lock, so a CronJob should set this)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list what would be removed; stop, remove and record nothing")
}

func (o gcOptions) validate() error {
	if o.OlderThan < 0 {
		return usageError{fmt.Errorf("--older-than %s: must not be negative", o.OlderThan)}
	}
	return nil
}
