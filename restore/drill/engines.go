package drill

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// EngineDrill is what an engine other than PostgreSQL supplies to the drill pipeline: how to
// turn a materialised copy into a running throwaway of the engine on a runtime. PostgreSQL's
// throwaway is the runtimes' own Start (the pipeline's first engine); every other engine is a
// package registered with RegisterEngine (restore/drill/builtin lists them). The pipeline
// around it (select, clone, checks, RTO, teardown, isolation proof) is the same for all.
type EngineDrill interface {
	// Runtimes are the restore.runtime kinds the engine's throwaway runs on.
	Runtimes() []string
	// Start prepares the copy (a backup's --prepare, tool checks on the files such as
	// redis-check-rdb) and starts a throwaway on it; it does not wait for readiness. What
	// preparing proved comes back as findings; when one of them fails, the copy cannot be
	// restored: Start returns the findings and a nil Server, and the drill fails (exit 1).
	Start(ctx context.Context, req EngineStart) (Server, []checks.Finding, error)
}

// EngineStart is one throwaway to start.
type EngineStart struct {
	DrillID, Target string
	// Runtime is the target's restore options (runtime kind, listen, isolateNetwork, start
	// timeout, production paths).
	Runtime RuntimeOptions
	// RunAs owns the scratch directory; UserFrom says where it came from (local.UserFrom*).
	RunAs    postgres.RunAs
	UserFrom string
	// ScratchDir is the drill's private directory; Copy the backup materialised in it.
	ScratchDir string
	Copy       *Copy
	Snapshot   *snapshot.Metadata
	// Keep lets the throwaway outlive firedrill (--keep).
	Keep bool
	// Status hears what starting waits for; never nil.
	Status func(string)
	// Launch starts the engine's server process on the drill's runtime (a sandboxed local
	// process, a container): the engine says what to run, the runtime where.
	Launch func(ctx context.Context, s LaunchSpec) (Process, error)
	// Run runs one of the engine's one-shot tools (a file checker, an initialiser) to
	// completion where the server would run, with the same isolation, before any server
	// runs: s.Path is the tool, s.Args its arguments (Image, StopSignal and Listen as for
	// Launch). It returns the tool's combined output and exit code; the error is not nil
	// when the code is not 0 or the tool could not run (code -1).
	Run func(ctx context.Context, s LaunchSpec) ([]byte, int, error)
	// Remote is set when the runtime's processes do not share firedrill's filesystem (a
	// Kubernetes pod on the scratch PVCs): the copy is where Remote says they see it, the
	// server listens on TCP, and the launched Process is a Reachable. nil: the copy is local
	// (Copy.DataDir) and the scratch directory is shared (a unix socket in it is reachable).
	Remote *Remote
}

// Remote is where a runtime without a shared filesystem runs an engine: DataDir is the copy's
// data directory as its processes see it; the server must listen on TCP at Bind:Port there.
type Remote struct {
	DataDir string
	Bind    string
	Port    int
	// FilesDir is where LaunchSpec.Files are.
	FilesDir string
}

// RemoteLauncher is a Launcher whose processes run apart from firedrill's filesystem.
type RemoteLauncher interface {
	// Remote says where the materialised copy is for them and where their server listens.
	Remote(cp *Copy) (*Remote, error)
}

// Reachable is a Process firedrill reaches over TCP rather than a unix socket in the scratch
// directory. Addr waits until the process runs (status hears what it waits for) and returns
// the host:port to dial from firedrill (a port-forward, a pod's IP).
type Reachable interface {
	Addr(ctx context.Context, status func(string)) (string, error)
}

// LaunchSpec is an engine's server process to start on a runtime. Paths are the same inside
// and outside: the runtime shows the scratch directory at its own path (a bind mount in a
// container), so a unix socket in it is reachable from firedrill.
type LaunchSpec struct {
	// Name names the server in messages ("redis-server"); Path is its binary, absolute, as
	// the runtime sees it; Args its arguments; Env its environment (nil: LC_ALL=C and a PATH).
	Name string
	Path string
	Args []string
	Env  []string
	// Image is the container image that has Path (container runtimes); the engine's default
	// when restore.docker.image is not set.
	Image string
	// StopSignal asks the server to shut down cleanly; 0: SIGTERM.
	StopSignal syscall.Signal
	// EngineVersion and Listen are what the report says of the server.
	EngineVersion string
	Listen        string
	// Files are small files the server reads at start (an init file), by name: a runtime
	// without a shared filesystem shows them read-only in Remote.FilesDir. They must hold no
	// secret (a pod's are a ConfigMap).
	Files map[string]string
}

// Process is an engine's server process started by a runtime's Launch.
type Process interface {
	Stop(grace time.Duration) (clean bool, err error)
	Running() bool
	Remove() error
	Describer
	// Exec runs a tool (absolute path, as the runtime sees it) where the server runs, as its
	// user; it returns the output and the exit code.
	Exec(ctx context.Context, path string, args ...string) ([]byte, int, error)
	// CheckIsolation proves, from where the server runs, that production is out of its reach.
	CheckIsolation(ctx context.Context) checks.Finding
	// Exited is closed once the server exited.
	Exited() <-chan struct{}
}

// Launcher is a runtime that can start an engine's server process (every runtime that runs
// registered engines).
type Launcher interface {
	Launch(ctx context.Context, in LaunchIn, s LaunchSpec) (Process, error)
	// Run runs a one-shot tool to completion as EngineStart.Run says.
	Run(ctx context.Context, in LaunchIn, s LaunchSpec) ([]byte, int, error)
}

// LaunchIn is the drill a process is launched for: what the runtime needs besides the spec.
type LaunchIn struct {
	DrillID, Target string
	// ScratchDir is the drill's private directory, owned by RunAs (UserFrom says why that
	// user): the only tree of the host the process may write.
	ScratchDir string
	RunAs      postgres.RunAs
	UserFrom   string
	Keep       bool
	// ProductionPaths are masked and probed (the isolation finding).
	ProductionPaths []string
	// Volumes are the scratch volumes holding the copy (CSI PVCs): what a runtime that
	// mounts volumes rather than the scratch directory (a pod) mounts.
	Volumes []Volume
}

// Server is a running throwaway of a registered engine.
type Server interface {
	Lifecycle
	Describer
	// CheckIsolation proves, from inside the throwaway's own view, that production's paths
	// and network are out of its reach (the isolation finding).
	CheckIsolation(ctx context.Context) checks.Finding
	// Recovered is the recovery finding once the server is ready: how recovery ended (with the
	// log lines as evidence) and that the copy is the database that was snapshotted.
	Recovered(ctx context.Context) checks.Finding
	// CheckEnv fills the engine's clients and tools in the checks' environment.
	CheckEnv(env *checks.Env)
}

var engineDrills = struct {
	sync.RWMutex
	m map[string]EngineDrill
}{m: map[string]EngineDrill{}}

// RegisterEngine makes drills of engine (its registry name, restore/engine) run with e. It
// panics when the engine is registered twice: a programming error.
func RegisterEngine(name string, e EngineDrill) {
	engineDrills.Lock()
	defer engineDrills.Unlock()
	if _, dup := engineDrills.m[name]; dup {
		panic("drill.RegisterEngine: engine " + name + " registered twice")
	}
	engineDrills.m[name] = e
}

// UnregisterEngine removes a registration; for tests.
func UnregisterEngine(name string) {
	engineDrills.Lock()
	defer engineDrills.Unlock()
	delete(engineDrills.m, name)
}

// LookupEngine returns the registered drill of engine, if any.
func LookupEngine(name string) (EngineDrill, bool) {
	engineDrills.RLock()
	defer engineDrills.RUnlock()
	e, ok := engineDrills.m[name]
	return e, ok
}

// DrillEngines lists the engines drills run for: postgres and the registered ones.
func DrillEngines() []string {
	engineDrills.RLock()
	defer engineDrills.RUnlock()
	out := []string{EnginePostgres}
	for n := range engineDrills.m {
		out = append(out, n)
	}
	sort.Strings(out[1:])
	return out
}

// EnginePostgres is the engine the runtimes start themselves.
const EnginePostgres = "postgres"

// engineFor returns the registered drill of the target's engine (nil for PostgreSQL), or why
// the engine cannot be drilled on the target's runtime.
func engineFor(o Options) (EngineDrill, error) {
	if o.Engine == EnginePostgres || o.Engine == "" {
		return nil, nil
	}
	e, ok := LookupEngine(o.Engine)
	if !ok {
		return nil, fmt.Errorf("%w: restore drills of engine %s are not supported by this build (drills run for %s)", ErrUnsupported, o.Engine, strings.Join(DrillEngines(), ", "))
	}
	kind := o.Runtime.Kind
	if kind == "" {
		kind = "local"
	}
	if !slices.Contains(e.Runtimes(), kind) {
		return nil, fmt.Errorf("%w: drills of engine %s run on restore.runtime %s, not %s", ErrUnsupported, o.Engine, strings.Join(e.Runtimes(), " or "), kind)
	}
	return e, nil
}

// OutputTail is the last n non-empty lines of a tool's output, trimmed: the evidence of what
// an engine's tool (a prepare, a load) said last.
func OutputTail(out []byte, n int) []string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
