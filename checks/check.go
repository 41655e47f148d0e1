package checks

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
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
	// Logical: the copy is a logical dump restored into a fresh cluster, whose pages the drill
	// itself wrote: page checksums would say nothing of the backup.
	Logical bool
	// DataDir and BinDir locate the restored data directory and the server binaries.
	DataDir string
	BinDir  string
	// Exec runs a server binary (from BinDir) as the user that owns the restored copy.
	Exec func(ctx context.Context, name string, args ...string) ([]byte, int, error)
	// HostDataDir is the restored data directory as firedrill itself reads it; empty when the
	// copy is only where the runtime's tools see it (a pod's volume).
	HostDataDir string
	// VerifiedBlocks are relations' main forks, by pg_relation_filepath ("base/5/16397"),
	// whose first N blocks the server read with data checksums verified while a check ran
	// (amcheck's verify_heapam reads every block of a heap): the checksum pass over the
	// stopped copy counts those blocks instead of reading them a second time.
	VerifiedBlocks map[string]int64
	// Incremental, when set, scopes amcheck (and the checksum pass over the stopped copy) to
	// what changed since the last snapshot that passed a full drill (checks.amcheck.mode:
	// incremental); nil: everything is checked.
	Incremental *Incremental

	// Engine is the drilled engine's registry name ("postgres", "mariadb", "redis").
	Engine string
	// Recorded are the engine's facts recorded with the snapshot (snapshot metadata
	// attributes: binlog position, key counts at BGSAVE time); never secrets.
	Recorded map[string]string
	// SQL reaches a MariaDB/MySQL throwaway (queries name their database); nil otherwise. DB
	// is nil for such a throwaway.
	SQL *sql.DB
	// Redis returns a client of one logical database of a Redis throwaway (the throwaway
	// owns and closes them); nil otherwise.
	Redis func(db int) *goredis.Client
	// Mongo reaches a MongoDB throwaway; nil otherwise.
	Mongo *mongo.Client

	// gate holds Parallel query slots shared by every check that runs on this Env, so checks
	// run side by side (Concurrent) still run at most Parallel queries at once.
	gate *gate
}

var gateMu sync.Mutex

// slots returns the env's shared query slots, made on first use.
func (e *Env) slots() *gate {
	gateMu.Lock()
	defer gateMu.Unlock()
	if e.gate == nil {
		e.gate = newGate(e.Parallel)
	}
	return e.gate
}

// Concurrent is a check that may run beside the other Concurrent checks of a drill: its work is
// queries over its own connections, each holding one of the Env's shared slots (largest
// first), and it writes nothing in the Env another concurrent check reads. Running amcheck and
// the row counts side by side keeps every connection busy while amcheck's longest query (a big
// index's heapallindexed pass) runs alone.
type Concurrent interface {
	Check
	Concurrent() bool
}

// RunsConcurrently reports whether c may run beside the drill's other concurrent checks.
func RunsConcurrently(c Check) bool {
	cc, ok := c.(Concurrent)
	return ok && cc.Concurrent()
}

// Check is one integrity check run while the restored server is up.
type Check interface {
	Name() string
	// Engines are the engines the check serves, by their registry names ("postgres"); nil:
	// every engine. A drill of another engine skips it and says so.
	Engines() []string
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

// onByDefault is a check every drill of its engine runs unless turned off (amcheck,
// validate): a drill of another engine does not report it skipped.
type onByDefault interface{ OnByDefault() bool }

// Skipped is a check a configuration enables that does not serve the drilled engine: the
// drill reports it (with the reason) instead of running it.
type Skipped struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// BuildFor returns the checks a configuration enables that serve engine, in run order, and the
// enabled ones skipped because they do not.
func BuildFor(cfg Config, engine string) ([]Check, []Skipped) {
	var out, all []Check
	for _, r := range registry {
		all = append(all, r.build(cfg)...)
	}
	// A check may have one implementation per engine under one name (row-counts): it is
	// skipped only when none serves the drilled engine, and said once.
	served := map[string]bool{}
	for _, c := range all {
		if Serves(c, engine) {
			out = append(out, c)
			served[c.Name()] = true
		}
	}
	var skipped []Skipped
	for _, c := range all {
		if served[c.Name()] || slices.ContainsFunc(skipped, func(s Skipped) bool { return s.Check == c.Name() }) {
			continue
		}
		if d, ok := c.(onByDefault); ok && d.OnByDefault() {
			continue // every drill of another engine would say so: nothing configured was dropped
		}
		var engines []string
		for _, o := range all {
			if o.Name() == c.Name() {
				for _, e := range o.Engines() {
					if !slices.Contains(engines, e) {
						engines = append(engines, e)
					}
				}
			}
		}
		skipped = append(skipped, Skipped{Check: c.Name(),
			Reason: fmt.Sprintf("%s serves %s only, not %s", c.Name(), strings.Join(engines, ", "), engine)})
	}
	return out, skipped
}

// Build returns the checks a configuration enables for PostgreSQL, in run order.
//
// Deprecated: use BuildFor with the drilled engine; Build stays until every caller passes one.
func Build(cfg Config) []Check {
	out, _ := BuildFor(cfg, enginePostgres)
	return out
}

// Serves reports whether c serves engine.
func Serves(c Check, engine string) bool {
	es := c.Engines()
	return es == nil || slices.Contains(es, engine)
}

// enginePostgres is PostgreSQL's name in the engine registry (restore/engine), which checks
// must not import.
const enginePostgres = "postgres"

func postgresOnly() []string { return []string{enginePostgres} }
