package checks

import (
	"context"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// DB is the restored database the checks read. Implementations connect only to the throwaway
// copy, never to production.
type DB interface {
	// Databases lists the databases that accept connections.
	Databases(ctx context.Context) ([]string, error)
	// Connect opens a new connection to one database.
	Connect(ctx context.Context, database string) (*pgx.Conn, error)
}

// Env is what a check may use.
type Env struct {
	DB DB
	// Parallel bounds the connections a check opens to one database.
	Parallel int
	// Now is the drill's clock: ages are measured against it.
	Now func() time.Time
	// RPO is the target's recovery point objective.
	RPO time.Duration
	// DataDir and BinDir locate the restored data directory and the server binaries.
	DataDir string
	BinDir  string
	// Exec runs a server binary (from BinDir) as the user that owns the restored copy.
	Exec func(ctx context.Context, name string, args ...string) ([]byte, int, error)
}

// Check is one integrity check run while the restored server is up.
type Check interface {
	Name() string
	Run(ctx context.Context, env *Env) []Finding
}

// StoppedCheck is a check with a second part that runs on the cleanly stopped copy.
type StoppedCheck interface {
	Check
	RunStopped(ctx context.Context, env *Env) []Finding
}

type registration struct {
	name  string
	order int
	build func(Config) []Check
}

var registry []registration

// Register adds a check to the registry. order places it in a drill: checks that read every
// page come first, and checks that read what those reads left behind (checksum failure
// counters) come last.
func Register(name string, order int, build func(Config) []Check) {
	registry = append(registry, registration{name: name, order: order, build: build})
	sort.SliceStable(registry, func(i, j int) bool { return registry[i].order < registry[j].order })
}

// Names lists the registered checks in run order.
func Names() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.name
	}
	return out
}

// Build returns the checks a configuration enables, in run order.
func Build(cfg Config) []Check {
	var out []Check
	for _, r := range registry {
		out = append(out, r.build(cfg)...)
	}
	return out
}
