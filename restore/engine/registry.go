package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Errors an engine's Open returns; the snapshot core maps them to exit codes.
var (
	// ErrUnreachable means the production database could not be reached.
	ErrUnreachable = errors.New("database unreachable")
	// ErrAuth means the database refused the configured credentials: it is running and reachable.
	ErrAuth = errors.New("authentication failed")
	// ErrMalformedDSN means the connection DSN cannot be parsed: a configuration error.
	ErrMalformedDSN = errors.New("malformed connection DSN")
	// ErrMismatch means the configuration and the database disagree (wrong data directory).
	ErrMismatch = errors.New("configuration does not match the database")
)

// Spec is everything engine-specific the snapshot core, validation and the audit need to know
// about one engine. Each engine package builds its own; restore/engine/builtin registers them.
// Nothing outside an engine's package decides by its name.
type Spec struct {
	// Name is the engine's configuration name (targets[].engine); Aliases are accepted too.
	Name    string
	Aliases []string
	// Modes are every snapshot mode of the engine (snapshot.mode), the first the default.
	Modes []string
	// ModeHelp says, after "engine X has no mode M", which modes to use and what they do.
	ModeHelp string
	// Drivers are, per snapshot driver (snapshot.driver), the modes that driver can take of this
	// engine consistently. A driver not listed takes none: Refusals says why.
	Drivers map[string][]string
	// Refusals are, per driver, why the driver cannot take a consistent snapshot of this
	// engine at all and what to use instead.
	Refusals map[string]string
	// BackupModes are the modes in which the database is not frozen but put in backup mode
	// (PostgreSQL's pg_backup_start/stop): writes go on, so a file copy needs no freeze bound;
	// the copy is consistent only once replayed to the end of the backup, so that is its
	// recovery point; and the backup's files (backup_label, tablespace_map) are kept with the
	// snapshot and written back at restore.
	BackupModes []string
	// WALArchiving says whether the audit's WAL archiving check applies to the engine.
	WALArchiving bool
	// DefaultDatabase is the database SQL checks (checks.sql, checks.freshness) connect to
	// when they name none; empty: the engine's queries name their databases themselves.
	DefaultDatabase string
	// KeyValue marks a key-value store: its checks read keys (checks.keys, checks.redis,
	// checks.freshness.key), not SQL.
	KeyValue bool
	// Document marks a document store: its checks are validate, document counts
	// (rowCounts.min by database.collection) and count assertions (checks.mongo), not SQL.
	Document bool
	// ParseDSN checks a DSN the way the engine's driver will parse it, without connecting.
	ParseDSN func(dsn string) error
	// Open connects to a target's database and builds its freezer.
	Open func(ctx context.Context, req OpenRequest) (*Opened, error)
}

// OpenRequest is what an engine needs to connect to a target and freeze it.
type OpenRequest struct {
	Target string
	Mode   string
	// DSN reaches production; it is never logged or put in an error.
	DSN string
	// DataDir is the live data directory, already resolved to its real path, when the snapshot
	// copies files (local driver); Volumes is set instead when storage cuts volumes (csi).
	DataDir string
	Volumes bool
	// MaxFreeze bounds how long the database stays frozen; 0 means unbounded.
	MaxFreeze time.Duration
	// Fast asks for an immediate checkpoint.
	Fast bool
	Now  func() time.Time
	// Outside refuses a directory the copy includes (what names it) that holds the snapshot
	// repository; nil when there is no local repository.
	Outside func(what, dir string) error
}

// Opened is a connected freezer, the facts it read about the server (recorded with the
// snapshot) and, for a file copy, which files to copy. Closing the freezer closes the connection.
type Opened struct {
	Freezer Freezer
	Info    map[string]string
	Rule    CopyRule
	// Backup, when set, makes a file copy (local driver) the engine's own: it writes a
	// consistent copy of the database into dest, an empty directory (MariaDB's mariadb-backup
	// --backup), and returns what it recorded, instead of the snapshot core freezing the
	// database and copying its files by Rule. Freezer is then never frozen, only closed: it
	// holds the connection Info was read on.
	Backup func(ctx context.Context, dest string) (*Frozen, error)
}

// Takes reports whether driver takes mode of this engine consistently.
func (s *Spec) Takes(driver, mode string) bool { return slices.Contains(s.Drivers[driver], mode) }

// HasMode reports whether mode is one of the engine's modes on any driver.
func (s *Spec) HasMode(mode string) bool { return slices.Contains(s.Modes, mode) }

// InBackupMode reports whether mode puts the database in backup mode rather than freezing it.
func (s *Spec) InBackupMode(mode string) bool { return slices.Contains(s.BackupModes, mode) }

var registry struct {
	sync.RWMutex
	specs  []*Spec
	byName map[string]*Spec
}

// Register adds an engine. It panics on a name or alias already taken, or on a spec whose
// drivers list a mode the engine does not have: both are programming errors.
func Register(s Spec) {
	if s.Name == "" || s.Open == nil || s.ParseDSN == nil || len(s.Modes) == 0 {
		panic(fmt.Sprintf("engine.Register: %q needs a name, modes, ParseDSN and Open", s.Name))
	}
	for d, modes := range s.Drivers {
		for _, m := range modes {
			if !s.HasMode(m) {
				panic(fmt.Sprintf("engine.Register: %s: driver %s takes mode %q, which is not among its modes %v", s.Name, d, m, s.Modes))
			}
		}
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.byName == nil {
		registry.byName = map[string]*Spec{}
	}
	sp := &s
	names := append([]string{s.Name}, s.Aliases...)
	for _, n := range names {
		if _, dup := registry.byName[n]; dup {
			panic(fmt.Sprintf("engine.Register: engine %q registered twice", n))
		}
	}
	for _, n := range names {
		registry.byName[n] = sp
	}
	registry.specs = append(registry.specs, sp)
}

// Unregister removes an engine and its aliases; for tests that register a fake one.
func Unregister(name string) {
	registry.Lock()
	defer registry.Unlock()
	sp, ok := registry.byName[name]
	if !ok {
		return
	}
	for _, n := range append([]string{sp.Name}, sp.Aliases...) {
		delete(registry.byName, n)
	}
	registry.specs = slices.DeleteFunc(registry.specs, func(s *Spec) bool { return s == sp })
}

// Lookup returns the engine called name (its name or an alias).
func Lookup(name string) (*Spec, bool) {
	registry.RLock()
	defer registry.RUnlock()
	s, ok := registry.byName[name]
	return s, ok
}

// Names lists every accepted engine name, aliases after their engine, in registration order.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	var out []string
	for _, s := range registry.specs {
		out = append(out, s.Name)
		out = append(out, s.Aliases...)
	}
	return out
}

// Specs returns the registered engines in registration order.
func Specs() []*Spec {
	registry.RLock()
	defer registry.RUnlock()
	return slices.Clone(registry.specs)
}

// AllModes lists every mode of any registered engine, in order of first appearance.
func AllModes() []string {
	var out []string
	for _, s := range Specs() {
		for _, m := range s.Modes {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// AnyTakes reports whether driver takes mode of any registered engine: what can be said of a
// mode and driver when the engine is unknown.
func AnyTakes(driver, mode string) bool {
	for _, s := range Specs() {
		if s.Takes(driver, mode) {
			return true
		}
	}
	return false
}

// WithClose returns f with close called after f's own Close (the client f's connection came
// from), both errors joined.
func WithClose(f Freezer, close func() error) Freezer { return &closing{Freezer: f, close: close} }

type closing struct {
	Freezer
	close func() error
}

func (c *closing) Close(ctx context.Context) error {
	err := c.Freezer.Close(ctx)
	if c.close != nil {
		err = errors.Join(err, c.close())
		c.close = nil
	}
	return err
}

// CloseAfter closes f after a failure err and joins what closing it returned: a failed thaw or
// backup stop must reach the caller, never be dropped.
func CloseAfter(ctx context.Context, f interface{ Close(context.Context) error }, err error) error {
	if cerr := f.Close(ctx); cerr != nil {
		return errors.Join(err, fmt.Errorf("and while releasing the database (it may still be frozen or in backup mode): %w", cerr))
	}
	return err
}

// SameDir reports whether a and b name one directory, symlinks resolved where they exist.
func SameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}

// Malformed is the error of a DSN the engine's driver cannot parse. Drivers' parse errors may
// quote the DSN: it says only that it is malformed (configuration validation says why).
func Malformed(target string) error {
	return fmt.Errorf("%w: the connection DSN of target %s is malformed", ErrMalformedDSN, target)
}

// InBackupMode reports whether mode puts the engine called name in backup mode rather than
// freezing it (Spec.BackupModes); false for an engine not registered.
func InBackupMode(name, mode string) bool {
	s, ok := Lookup(name)
	return ok && s.InBackupMode(mode)
}
