package take

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// The errors of opening a target's database are the engine registry's (errors.Is matches
// either name).
var (
	// ErrUnreachable means the production database could not be reached.
	ErrUnreachable = engine.ErrUnreachable
	// ErrAuth means the database refused the configured credentials: it is running and reachable.
	ErrAuth = engine.ErrAuth
	// ErrMalformedDSN means the connection DSN cannot be parsed: a configuration error.
	ErrMalformedDSN = engine.ErrMalformedDSN
	// ErrMismatch means the configuration and the database disagree (wrong data directory).
	ErrMismatch = engine.ErrMismatch
)

// ErrUnsupported means the engine, mode and driver cannot make a consistent snapshot together.
var ErrUnsupported = errors.New("unsupported snapshot combination")

// ErrFreezeTimeout means the database stayed frozen for the maximum allowed time: it was
// thawed and the snapshot discarded.
var ErrFreezeTimeout = errors.New("the freeze reached its maximum duration")

// Options is one snapshot of one target.
type Options struct {
	Target  string
	Engine  string
	Mode    string
	BatchID string
	// DSN reaches production; it is never logged or put in an error.
	DSN string
	// DataDir is the live data directory (local driver).
	DataDir    string
	Repository *local.Repository
	// CSI is the csi driver; with it, Volumes are the PVCs to snapshot (data first).
	CSI     *csi.Driver
	Volumes []csi.PVC
	// MaxFreeze bounds how long the database stays frozen; 0 means unbounded. A file copy
	// under backup mode (the engine's BackupModes: PostgreSQL online), which blocks no writes,
	// is never bounded.
	MaxFreeze time.Duration
	// Freezer, when set, is used instead of connecting with DSN (with Rule for the local
	// driver and Attributes recorded with the snapshot): for callers that hold their own session.
	Freezer    engine.Freezer
	Rule       engine.CopyRule
	Attributes map[string]string
	// Fast asks for an immediate checkpoint.
	Fast   bool
	Status func(string)
	Now    func() time.Time
	Log    *slog.Logger
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Status == nil {
		o.Status = func(string) {}
	}
}

// DriverName is the driver o uses.
func (o *Options) DriverName() string {
	if o.CSI != nil {
		return csi.DriverName
	}
	return local.DriverName
}

// Take takes one snapshot. On failure nothing is left behind: the database is thawed (no lock,
// no backup mode, no slot) before the error is returned, and no partial snapshot remains.
func Take(ctx context.Context, o Options) (*snapshot.Metadata, error) {
	o.defaults()
	if err := Supported(o.Engine, o.Mode, o.DriverName()); err != nil {
		return nil, err
	}
	fz, err := open(ctx, &o)
	if err != nil {
		return nil, err
	}
	o.Log.Info("taking snapshot", "target", o.Target, "engine", o.Engine, "mode", o.Mode, "driver", o.DriverName(), "serverVersion", fz.info["serverVersion"])
	// The engine's own backup tool (mariadb-backup) blocks no writes for long either.
	if o.MaxFreeze <= 0 || o.CSI == nil && (engine.InBackupMode(o.Engine, o.Mode) || fz.backup != nil) {
		// Backup mode blocks no writes, and a file copy of a large database takes as long as
		// it takes: no freeze bound.
		return create(ctx, &o, fz.freezer, fz)
	}
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g := newGuard(fz.freezer, o.MaxFreeze, func() { cancel(ErrFreezeTimeout) })
	meta, err := create(gctx, &o, g, fz)
	if err != nil && errors.Is(context.Cause(gctx), ErrFreezeTimeout) {
		return nil, fmt.Errorf("%w (%s, snapshot.maxFreeze): %s was thawed and the snapshot discarded: %w", ErrFreezeTimeout, o.MaxFreeze, o.Target, err)
	}
	return meta, err
}

// create hands the freezer to the target's driver.
func create(ctx context.Context, o *Options, f engine.Freezer, fz *opened) (*snapshot.Metadata, error) {
	if o.CSI != nil {
		return o.CSI.Create(ctx, csi.CreateRequest{
			Target: o.Target, Engine: o.Engine, Mode: o.Mode, BatchID: o.BatchID,
			Volumes: o.Volumes, Freezer: f, Attributes: fz.info, Status: o.Status,
		})
	}
	if o.Repository == nil {
		return nil, engine.CloseAfter(ctx, f, fmt.Errorf("%w: target %s has neither a local repository nor a csi driver", ErrUnsupported, o.Target))
	}
	return o.Repository.Create(ctx, local.CreateRequest{
		Target: o.Target, Engine: o.Engine, Mode: o.Mode, BatchID: o.BatchID,
		DataDir: o.DataDir, Freezer: f, Rule: fz.rule, Backup: fz.backup, Attributes: fz.info, Status: o.Status,
	})
}

// Supported says whether engine, mode and driver make a consistent snapshot together, and if
// not, why and what to use instead. The engine's registry entry decides.
func Supported(eng, mode, driver string) error {
	spec, ok := engine.Lookup(eng)
	if !ok {
		return fmt.Errorf("%w: engine %q (supported: %s)", ErrUnsupported, eng, strings.Join(engine.Names(), ", "))
	}
	if why, refused := spec.Refusals[driver]; refused {
		return fmt.Errorf("%w: the %s driver refuses %s: %s", ErrUnsupported, driver, eng, why)
	}
	if !spec.HasMode(mode) {
		return fmt.Errorf("%w: engine %s has no mode %q (%s)", ErrUnsupported, eng, mode, spec.ModeHelp)
	}
	if !spec.Takes(driver, mode) {
		if driver == local.DriverName && mode == "crash-consistent" {
			return fmt.Errorf("%w: the local driver refuses crash-consistent mode: a file-by-file copy of a running database is not atomic; use mode online, or driver csi", ErrUnsupported)
		}
		return fmt.Errorf("%w: the %s driver cannot take %s snapshots of engine %s (it takes: %s)", ErrUnsupported, driver, mode, eng, strings.Join(spec.Drivers[driver], ", "))
	}
	return nil
}
