package drill

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// Runtime is where a drill's throwaway runs (restore.runtime): a local process, a Docker
// container, later a Kubernetes pod. The wiring registers one constructor per name in
// Drill.Runtimes; the pipeline never switches on the name.
type Runtime interface {
	// ScratchOwner is the user the scratch directory is made for, before anything is
	// materialised in it.
	ScratchOwner(drillID string) (postgres.RunAs, error)
	// Start starts a throwaway server on the materialised copy. It does not wait for
	// recovery: the handle's WaitReady does.
	Start(ctx context.Context, s StartSpec) (Throwaway, error)
}

// RuntimeFactory builds the runtime of one drill from the target's restore options.
type RuntimeFactory func(ctx context.Context, o RuntimeOptions) (Runtime, error)

// LeftoverStopper is a runtime that can stop what a dead drill left running on its scratch
// directory (beyond the local process the scratch sweep always looks for).
type LeftoverStopper interface {
	StopLeftover(ctx context.Context, scratchDir string) ([]string, error)
}

// TargetSweeper is a runtime whose leftovers can outlive their scratch directory (a
// container, Kubernetes objects): it removes those of one target (a drill's own sweep passes
// the zero GCOptions) and says what it removed, or with o.DryRun would remove.
type TargetSweeper interface {
	SweepTarget(ctx context.Context, target string, o GCOptions) ([]string, error)
}

// StartSpec is what a runtime starts a throwaway on.
type StartSpec struct {
	DrillID, Target string
	// ScratchDir is the drill's private directory; DataDir the materialised copy inside it.
	ScratchDir, DataDir string
	// Major is the copy's PostgreSQL major version (PG_VERSION); EngineVersion the snapshot's.
	Major, EngineVersion string
	// Superuser is the role to connect as (the snapshot's bootstrap superuser).
	Superuser string
	// Files and Tablespaces are handed to postgres.PrepareRestore.
	Files       map[string][]byte
	Tablespaces map[string]string
	// Keep lets the throwaway outlive firedrill (--keep).
	Keep bool
	// ProductionPaths are probed from inside the throwaway (the isolation finding).
	ProductionPaths []string
	// Copy is the materialised backup (DataDir above is its local directory, if any);
	// Snapshot the backup it was made from.
	Copy     *Copy
	Snapshot *snapshot.Metadata
}

// DriverDrills is a runtime that says which snapshot drivers' backups it can mount. A runtime
// without it mounts local directories: it drills the local driver's snapshots.
type DriverDrills interface {
	Drills(driver string) error
}

// drills refuses, before anything is listed, a target whose backups the runtime cannot mount.
func drills(rt Runtime, o Options) error {
	if dd, ok := rt.(DriverDrills); ok {
		return dd.Drills(o.Driver)
	}
	if o.Driver != "" && o.Driver != "local" {
		kind := o.Runtime.Kind
		if kind == "" {
			kind = "local"
		}
		return fmt.Errorf("%w: drills of %s snapshots are not supported by restore.runtime %s, which mounts local copies: set restore.runtime: kubernetes to restore them into a scratch PVC", ErrUnsupported, o.Driver, kind)
	}
	return nil
}

// Throwaway is a running throwaway server: what the checks use, its lifecycle, and what the
// report says of it.
type Throwaway interface {
	checks.DB
	Lifecycle
	Describer
	// Exec runs one of the engine's tools against the copy (pg_checksums on the stopped copy).
	Exec(ctx context.Context, name string, args ...string) ([]byte, int, error)
	// BinDir is where Exec finds the tools, as the checks' environment names it.
	BinDir() string
	// CheckIsolation probes production's paths from inside the throwaway.
	CheckIsolation(ctx context.Context) checks.Finding
}

// Lifecycle waits for, stops and removes a throwaway. Stop and Remove take no context: they
// run during teardown after a cancellation.
type Lifecycle interface {
	WaitReady(ctx context.Context, status func(string)) error
	Stop(grace time.Duration) (clean bool, err error)
	Running() bool
	// Remove removes what the runtime made outside the scratch directory (a container).
	Remove() error
}

// Describer says where and how the throwaway ran, for the report and for --keep.
type Describer interface {
	Describe() *reports.Runtime
	Kept() *reports.Kept
	ServerLog() string
	LogEvidence(n int) []string
}

// DefaultRuntimes are the runtimes every build has: the local process.
func DefaultRuntimes() map[string]RuntimeFactory {
	return map[string]RuntimeFactory{"local": NewLocalRuntime}
}

func (d *Drill) runtime(ctx context.Context, o RuntimeOptions) (Runtime, error) {
	reg := d.Runtimes
	if reg == nil {
		reg = DefaultRuntimes()
	}
	kind := o.Kind
	if kind == "" {
		kind = "local"
	}
	f, ok := reg[kind]
	if !ok {
		names := make([]string, 0, len(reg))
		for n := range reg {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: restore.runtime %q is not available in this build (%s)", ErrUnsupported, kind, strings.Join(names, ", "))
	}
	return f(ctx, o)
}

// localRuntime runs the throwaway as a local process in a sandbox (restore/runtime/local).
type localRuntime struct {
	o        RuntimeOptions
	runAs    *postgres.RunAs
	userFrom string
}

// NewLocalRuntime is the "local" runtime's factory.
func NewLocalRuntime(_ context.Context, o RuntimeOptions) (Runtime, error) {
	return &localRuntime{o: o}, nil
}

func (l *localRuntime) ScratchOwner(drillID string) (postgres.RunAs, error) {
	if l.runAs != nil {
		return *l.runAs, nil
	}
	runAs, from, err := local.ResolveRunAs(l.o.RunAsUser, drillID)
	if err != nil {
		return runAs, fmt.Errorf("while choosing the user to run the throwaway server as: %w", err)
	}
	l.runAs, l.userFrom = &runAs, from
	return runAs, nil
}

func (l *localRuntime) Start(ctx context.Context, s StartSpec) (Throwaway, error) {
	binDir, err := postgres.FindBinDir(s.Major, l.o.BinDir)
	if err != nil {
		return nil, err
	}
	runAs, err := l.ScratchOwner(s.DrillID)
	if err != nil {
		return nil, err
	}
	p, err := local.Start(ctx, local.Options{
		BinDir: binDir, DataDir: s.DataDir, ScratchDir: s.ScratchDir, RunAs: runAs,
		Listen: l.o.Listen, IsolateNetwork: l.o.IsolateNetwork, Superuser: s.Superuser,
		Files: s.Files, Tablespaces: s.Tablespaces, Clean: s.Copy != nil && s.Copy.Clean, EngineVersion: s.EngineVersion,
		Keep: s.Keep, UserFrom: l.userFrom, ProductionPaths: s.ProductionPaths, Recovery: s.Copy.recovery(),
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// UserFrom says where the scratch owner came from (local.UserFrom*), once ScratchOwner chose it.
func (l *localRuntime) UserFrom() string { return l.userFrom }

// Launch starts an engine's server as a local process, in the drill's sandbox when there can
// be one (local.StartDaemon).
func (l *localRuntime) Launch(ctx context.Context, in LaunchIn, s LaunchSpec) (Process, error) {
	d, err := local.StartDaemon(ctx, local.DaemonOptions{
		Name: s.Name, Path: s.Path, Args: s.Args, Env: s.Env, ScratchDir: in.ScratchDir, RunAs: in.RunAs, UserFrom: in.UserFrom,
		IsolateNetwork: l.o.IsolateNetwork, ProductionPaths: in.ProductionPaths, Keep: in.Keep,
		StopSignal: s.StopSignal, EngineVersion: s.EngineVersion, Listen: s.Listen,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Run runs an engine's one-shot tool where its server would run (local.RunOnce).
func (l *localRuntime) Run(ctx context.Context, in LaunchIn, s LaunchSpec) ([]byte, int, error) {
	return local.RunOnce(ctx, local.DaemonOptions{
		Name: s.Name, Path: s.Path, Args: s.Args, Env: s.Env, ScratchDir: in.ScratchDir, RunAs: in.RunAs, UserFrom: in.UserFrom,
		IsolateNetwork: l.o.IsolateNetwork, ProductionPaths: in.ProductionPaths,
	})
}
