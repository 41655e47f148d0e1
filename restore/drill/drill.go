package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	dirscratch "github.com/firedrill/firedrill/restore/drill/scratch"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// ErrUsage marks a drill request that cannot be served as asked (an unknown snapshot id).
var ErrUsage = errors.New("invalid drill request")

// ErrUnsupported means this build cannot drill the target's engine or snapshot driver.
var ErrUnsupported = errors.New("drill not supported")

// ErrPlatform marks a throwaway the platform could not run (an image that cannot be pulled, a
// pod that cannot be scheduled, a phase timeout): the drill could not check (exit 3), which is
// not a backup that failed to recover.
var ErrPlatform = errors.New("the platform could not run the throwaway")

// Finding names the drill itself produces (besides the registered checks).
const (
	SnapshotIntegrityName = "snapshot-integrity"
	RecoveryName          = "recovery"
	RTOName               = "rto"
)

// Progress hears what the drill is doing.
type Progress interface {
	Phase(name string)
	Status(msg string)
}

// Options is one drill of one target.
type Options struct {
	Target string
	Engine string
	// Driver is the target's snapshot driver; drills restore from the local driver.
	Driver     string
	SnapshotID string // empty: the newest complete snapshot
	RTO        time.Duration
	RPO        time.Duration
	Checks     checks.Config
	Runtime    RuntimeOptions
	// Keep leaves the scratch directory and the running server in place for inspection.
	Keep bool
}

// RuntimeOptions configures the throwaway server.
type RuntimeOptions struct {
	// Kind names the runtime in Drill.Runtimes (restore.runtime); empty: local.
	Kind string
	// Target is the drill's target (set by Run and GC), for runtimes configured per target.
	Target         string
	BinDir         string
	ScratchDir     string
	RunAsUser      string
	Listen         string
	IsolateNetwork bool
	StartTimeout   time.Duration
	// ProductionPaths are production's paths config knows (data directory, repository,
	// socket directory, history, config file): masked in the sandbox when inside what it
	// shows, and probed from inside the throwaway (the isolation finding).
	ProductionPaths []string
	// Docker configures the docker runtime (restore.docker).
	Docker DockerOptions
}

// DockerOptions are restore.docker's keys.
type DockerOptions struct {
	// Image is the server's image; empty: postgres:<major> of the snapshot.
	Image string
	// UID is the image's database user; 0: found by running 'id -u postgres' in the image.
	UID int
	// MemoryBytes and NanoCPUs limit the container; 0: no limit.
	MemoryBytes int64
	NanoCPUs    int64
}

// Drill runs drills. Build it once with its clients and clock.
type Drill struct {
	Source   Source
	Now      func() time.Time
	Progress Progress
	Log      *slog.Logger
	// History receives the interrupted record of a dead drill found by a sweep; nil: none.
	History dirscratch.Recorder
	// StopLeftover stops what a dead drill left running on its scratch directory; default
	// local.CleanupLeftover.
	StopLeftover func(ctx context.Context, dir string) ([]string, error)
	// Runtimes are the runtimes by restore.runtime name; nil: DefaultRuntimes.
	Runtimes map[string]RuntimeFactory
	// Baselines keeps each target's last fully verified snapshot for incremental amcheck;
	// nil: every drill runs amcheck in full.
	Baselines Baselines
}

// run is the state of one drill.
type run struct {
	d       *Drill
	o       Options
	res     *reports.DrillResult
	start   time.Time
	phase   string
	phaseAt time.Time
	// lock is held on the scratch directory from before it exists until it is gone.
	lock *dirscratch.Lock
	// copy is the materialised backup; its Release runs at teardown.
	copy *Copy
	// replay is what WAL replay rewrites in the copy (incremental amcheck), or why that could
	// not be listed.
	replay    *postgres.ReplayTouches
	replayErr error
}

func (r *run) begin(name string) {
	r.end()
	r.phase, r.phaseAt = name, r.d.Now()
	r.d.Progress.Phase(name)
	if r.lock != nil {
		_ = r.lock.Update(func(rec *dirscratch.Record) { rec.Phase = name })
	}
}

func (r *run) end() {
	if r.phase == "" {
		return
	}
	r.res.Phases = append(r.res.Phases, reports.Phase{Name: r.phase, Seconds: r.d.Now().Sub(r.phaseAt).Seconds(), CountsTowardRTO: r.phase != "teardown"})
	r.phase = ""
}

// Run performs one drill. It always returns a result (status error when the drill could not
// complete); the error is non-nil only for a request that cannot be served as asked.
func (d *Drill) Run(ctx context.Context, o Options) (*reports.DrillResult, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Progress == nil {
		d.Progress = nopProgress{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	id := newID()
	log := d.Log.With("target", o.Target, "drill", id)
	o.Runtime.Target = o.Target
	rt, rtErr := d.runtime(ctx, o.Runtime)
	// Dead drills' leftovers go first, outside the RTO clock: they are not this restore's work.
	cleaned, kept := d.sweep(ctx, o, id, rt, log)
	r := &run{d: d, o: o, start: d.Now()}
	r.res = &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion, ID: id, Target: o.Target, Engine: o.Engine,
		StartedAt: r.start.UTC(), RTO: reports.RTO{TargetSeconds: o.RTO.Seconds()},
		Phases: []reports.Phase{}, Checks: []checks.Finding{},
		CleanedUp: cleaned, KeptThrowaways: kept,
	}
	err := rtErr
	if err == nil {
		err = r.do(ctx, log, rt)
	}
	r.end()
	r.res.FinishedAt = d.Now().UTC()
	if lerr := r.releaseLock(); lerr != nil {
		log.Warn("could not release the drill's scratch lock", "error", lerr)
	}
	if errors.Is(err, ErrUsage) {
		return r.res, err
	}
	if err != nil {
		r.res.Status = reports.StatusError
		r.res.Error = err.Error()
		if ctx.Err() != nil {
			r.res.Error = "interrupted: " + r.res.Error
			r.res.Interrupted = true
		}
	}
	r.res.Finalize()
	r.recordBaseline(ctx)
	log.Info("drill finished", "status", r.res.Status, "rtoSeconds", r.res.RTO.ActualSeconds)
	return r.res, nil
}

func (r *run) do(ctx context.Context, log *slog.Logger, rt Runtime) (err error) {
	d, o, res := r.d, r.o, r.res
	eng, err := engineFor(o)
	if err != nil {
		return err
	}
	if eng == nil {
		if err := drills(rt, o); err != nil {
			return err
		}
	}

	r.begin("select")
	meta, err := r.selectSnapshot(ctx)
	if err != nil {
		return err
	}
	res.Snapshot = &reports.SnapshotRef{ID: meta.ID, TakenAt: meta.TakenAt, Driver: meta.Driver,
		EngineVersion: meta.EngineVersion, SizeBytes: meta.SizeBytes, AgeSeconds: r.start.Sub(meta.TakenAt).Seconds()}
	log = log.With("snapshot", meta.ID)

	runAs, err := rt.ScratchOwner(res.ID)
	if err != nil {
		return err
	}
	if err := r.acquireLock(meta); err != nil {
		return err
	}
	scratch, err := makeScratch(o.Runtime.ScratchDir, o.Target, res.ID, runAs)
	if err != nil {
		return err
	}
	var proc server
	// Teardown always runs: success, failure, error, cancellation.
	defer func() {
		if terr := r.teardown(context.WithoutCancel(ctx), scratch, proc, log); terr != nil {
			err = errors.Join(err, terr)
		}
	}()

	r.begin("clone")
	cp, err := d.Source.Materialize(ctx, MaterializeRequest{Snapshot: meta, DrillID: res.ID, Target: o.Target, ScratchDir: scratch, Status: d.Progress.Status})
	if err != nil {
		return err
	}
	r.copy = cp
	res.Checks = append(res.Checks, cp.Findings...)
	res.Milestones = append(res.Milestones, cp.Milestones...)
	res.Notes = append(res.Notes, cp.Notes...)
	if cp.Damaged {
		return nil // the Fail finding is the outcome: a damaged copy proves nothing more by starting
	}

	r.begin("start-and-recovery")
	if eng != nil {
		return r.startEngine(ctx, eng, rt, scratch, meta, runAs, &proc)
	}
	major := cp.Major
	if major == "" && cp.DataDir != "" {
		if major, err = postgres.ReadPGVersion(cp.DataDir); err != nil {
			return err
		}
	}
	superuser := meta.Attributes[postgres.AttrSuperuser]
	if superuser == "" {
		superuser = "postgres"
	}
	if o.Checks.Amcheck.Incremental() && cp.FileHashes != nil && cp.DataDir != "" && !cp.Clean {
		// Before the start: the end-of-recovery checkpoint may recycle the segments replayed.
		r.replay, r.replayErr = r.replayTouches(ctx, major)
	}
	pg, err := rt.Start(ctx, StartSpec{
		DrillID: res.ID, Target: o.Target, ScratchDir: scratch, DataDir: cp.DataDir,
		Major: major, EngineVersion: meta.EngineVersion, Superuser: superuser,
		Files: cp.Files, Tablespaces: cp.Tablespaces, Keep: o.Keep,
		ProductionPaths: o.Runtime.ProductionPaths, Copy: cp, Snapshot: meta,
	})
	if err != nil {
		return fmt.Errorf("while starting the throwaway server: %w", err)
	}
	proc = pg
	ready, err := r.waitReady(ctx, pg)
	if !ready {
		return err
	}
	if err != nil {
		logLines := pg.LogEvidence(30)
		if reason := recoveryFatal(logLines); cp.Recovery != nil && reason != "" {
			// Replay to a target ends with PostgreSQL's own reason (a target past the archive):
			// that is the headline, the log is the evidence.
			res.Checks = append(res.Checks, checks.Failf(RecoveryName, checks.Evidence{"serverLog": logLines, "reason": reason},
				"the restored copy did not recover to recovery target %s: %s", cp.Recovery.Target, reason))
			return nil
		}
		res.Checks = append(res.Checks, checks.Failf(RecoveryName, checks.Evidence{"serverLog": logLines},
			"the restored copy did not recover: %v", err))
		return nil
	}
	res.Checks = append(res.Checks, recoveryFinding(ctx, pg, meta))
	// Proven rather than assumed: production's paths, probed from inside the throwaway.
	res.Checks = append(res.Checks, pg.CheckIsolation(ctx))

	dataDir := cp.DataDir
	if dd, ok := pg.(interface{ DataDir() string }); ok {
		dataDir = dd.DataDir() // where the runtime's tools see the copy (a pod's mount)
	}
	env := &checks.Env{DB: pg, Parallel: max(1, o.Checks.Parallel), Now: d.Now, RPO: o.RPO, Logical: cp.Clean,
		DataDir: dataDir, BinDir: pg.BinDir(), Exec: pg.Exec, Engine: o.Engine, Recorded: meta.Attributes}
	if cp.DataDir != "" && dataDir == cp.DataDir {
		env.HostDataDir = cp.DataDir // the runtime's tools and firedrill see the copy at one path
	}
	if !cp.Clean {
		env.Incremental, res.Verification = r.scope(ctx)
		if v := res.Verification; v != nil && v.Reason != "" && o.Checks.Amcheck.Incremental() {
			res.Notes = append(res.Notes, "amcheck ran in full: "+v.Reason)
		}
	}
	return r.checkAndStop(ctx, pg, env, meta)
}

// waitReady waits for the throwaway to accept connections, within the runtime's start timeout.
// ready is false when the drill must stop with err (interrupted, or the platform failed); a
// copy that did not come up for a reason of its own returns ready with that error, which the
// caller turns into the recovery finding.
func (r *run) waitReady(ctx context.Context, proc server) (ready bool, err error) {
	r.res.Runtime = proc.Describe()
	wctx, cancel := context.WithTimeout(ctx, r.o.Runtime.StartTimeout)
	err = proc.WaitReady(wctx, r.d.Progress.Status)
	cancel()
	if ms, ok := proc.(interface{ Milestones() []reports.Milestone }); ok {
		r.res.Milestones = append(r.res.Milestones, ms.Milestones()...)
	}
	if err != nil && (ctx.Err() != nil || errors.Is(err, ErrPlatform)) {
		return false, err
	}
	return true, err
}

// startEngine starts a registered engine's throwaway and runs its checks.
func (r *run) startEngine(ctx context.Context, eng EngineDrill, rt Runtime, scratch string, meta *snapshot.Metadata, runAs postgres.RunAs, proc *server) error {
	userFrom := ""
	if uf, ok := rt.(interface{ UserFrom() string }); ok {
		userFrom = uf.UserFrom()
	}
	launcher, ok := rt.(Launcher)
	if !ok {
		return fmt.Errorf("%w: restore.runtime %s cannot run engine %s", ErrUnsupported, r.o.Runtime.Kind, r.o.Engine)
	}
	in := LaunchIn{DrillID: r.res.ID, Target: r.o.Target, ScratchDir: scratch, RunAs: runAs,
		UserFrom: userFrom, Keep: r.o.Keep, ProductionPaths: r.o.Runtime.ProductionPaths, Volumes: r.copy.Volumes}
	var remote *Remote
	if rl, ok := launcher.(RemoteLauncher); ok {
		var err error
		if remote, err = rl.Remote(r.copy); err != nil {
			return err
		}
	}
	srv, findings, err := eng.Start(ctx, EngineStart{
		DrillID: r.res.ID, Target: r.o.Target, Runtime: r.o.Runtime, RunAs: runAs, UserFrom: userFrom,
		ScratchDir: scratch, Copy: r.copy, Snapshot: meta, Keep: r.o.Keep, Status: r.d.Progress.Status,
		Launch: func(ctx context.Context, s LaunchSpec) (Process, error) { return launcher.Launch(ctx, in, s) },
		Run:    func(ctx context.Context, s LaunchSpec) ([]byte, int, error) { return launcher.Run(ctx, in, s) },
		Remote: remote,
	})
	r.res.Checks = append(r.res.Checks, findings...)
	if err != nil {
		return fmt.Errorf("while starting the throwaway server: %w", err)
	}
	if srv == nil {
		// Preparing the copy proved it cannot be restored: the findings say why.
		return nil
	}
	*proc = srv
	ready, err := r.waitReady(ctx, srv)
	if !ready {
		return err
	}
	if err != nil {
		r.res.Checks = append(r.res.Checks, checks.Failf(RecoveryName, checks.Evidence{"serverLog": srv.LogEvidence(30)},
			"the restored copy did not recover: %v", err))
		return nil
	}
	r.res.Checks = append(r.res.Checks, srv.Recovered(ctx), srv.CheckIsolation(ctx))
	env := &checks.Env{Parallel: max(1, r.o.Checks.Parallel), Now: r.d.Now, RPO: r.o.RPO, Logical: r.copy.Clean,
		DataDir: r.copy.DataDir, Engine: r.o.Engine, Recorded: meta.Attributes}
	srv.CheckEnv(env)
	return r.checkAndStop(ctx, srv, env, meta)
}

// checkAndStop runs the configured checks on a ready throwaway, stops the RTO clock, and runs
// the checks of the cleanly stopped copy.
func (r *run) checkAndStop(ctx context.Context, proc server, env *checks.Env, meta *snapshot.Metadata) error {
	d, o, res, cp := r.d, r.o, r.res, r.copy
	var stopped []checks.StoppedCheck
	enabled, skipped := checks.BuildFor(o.Checks, o.Engine)
	enabled = append(slices.Clone(cp.Checks), enabled...)
	for _, sk := range skipped {
		res.Notes = append(res.Notes, "check "+sk.Check+" skipped: "+sk.Reason)
	}
	// The concurrent checks (amcheck, row counts) run side by side where the first of them
	// would run, sharing the env's query slots; the findings keep the checks' order.
	var together []int
	for i, c := range enabled {
		if checks.RunsConcurrently(c) {
			together = append(together, i)
		}
	}
	if len(together) < 2 || 2*env.Parallel+len(together) > concurrentConnections {
		// Each concurrent check opens up to env.Parallel connections (and one to plan): side
		// by side they must fit the throwaway's max_connections.
		together = nil
	}
	found := make([][]checks.Finding, len(enabled))
	for i, c := range enabled {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("before check %s: %w", c.Name(), err)
		}
		switch {
		case len(together) > 0 && i == together[0]:
			r.runTogether(ctx, enabled, together, found, env)
		case slices.Contains(together, i):
			// ran with the first of the concurrent checks
		default:
			r.begin("check:" + c.Name())
			found[i] = c.Run(ctx, env)
		}
		res.Checks = append(res.Checks, found[i]...)
		if sc, ok := c.(checks.StoppedCheck); ok {
			stopped = append(stopped, sc)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("while checking: %w", err)
	}
	r.end()
	// Verified and usable: the RTO clock stops here.
	actual := d.Now().Sub(r.start)
	res.RTO.ActualSeconds = actual.Seconds()
	res.Milestones = append(res.Milestones, reports.Milestone{Name: "checks-done", At: d.Now().UTC(), Source: "firedrill"})
	res.RTO.Met = actual <= o.RTO
	rtoEv := checks.Evidence{"targetSeconds": o.RTO.Seconds(), "actualSeconds": actual.Seconds()}
	if res.RTO.Met {
		res.Checks = append(res.Checks, checks.Passf(RTOName, rtoEv, "verified and usable after %s, within the RTO of %s", actual.Round(time.Millisecond), checks.ShortDuration(o.RTO)))
	} else {
		res.Checks = append(res.Checks, checks.Failf(RTOName, rtoEv, "verified and usable after %s, beyond the RTO of %s", actual.Round(time.Millisecond), checks.ShortDuration(o.RTO)))
	}
	r.setRecoveryPoint(meta)

	if o.Keep {
		res.Kept = proc.Kept()
		return nil
	}
	// Checks on the cleanly stopped copy belong to teardown: after "verified and usable".
	r.begin("teardown")
	clean, serr := proc.Stop(30 * time.Second)
	if serr != nil {
		return fmt.Errorf("while stopping the throwaway server: %w", serr)
	}
	for _, sc := range stopped {
		if !clean {
			res.Checks = append(res.Checks, checks.Errorf(sc.Name(), nil, "skipped on the stopped copy: the server did not shut down cleanly"))
			continue
		}
		res.Checks = append(res.Checks, sc.RunStopped(context.WithoutCancel(ctx), env)...)
	}
	return nil
}

// concurrentConnections is how many connections checks run side by side may open at once: the
// throwaway's max_connections (40, see postgres.PrepareRestore) less a margin.
const concurrentConnections = 36

// runTogether runs the checks cs[at...] side by side, leaves their findings in found[at...],
// and records a phase for each, marked concurrent (their seconds overlap).
func (r *run) runTogether(ctx context.Context, cs []checks.Check, at []int, found [][]checks.Finding, env *checks.Env) {
	names := make([]string, len(at))
	for k, i := range at {
		names[k] = cs[i].Name()
	}
	// The progress line and the drill's lock record name the group; the report names each.
	r.begin("check:" + strings.Join(names, "+"))
	r.phase = ""
	phases := make([]reports.Phase, len(at))
	var wg sync.WaitGroup
	for k, i := range at {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started := r.d.Now()
			found[i] = cs[i].Run(ctx, env)
			phases[k] = reports.Phase{Name: "check:" + cs[i].Name(), Seconds: r.d.Now().Sub(started).Seconds(), CountsTowardRTO: true, Concurrent: true}
		}()
	}
	wg.Wait()
	r.res.Phases = append(r.res.Phases, phases...)
}

// server is what the pipeline runs, waits for and tears down: PostgreSQL's Throwaway or a
// registered engine's Server.
type server interface {
	Lifecycle
	Describer
}

// selectSnapshot picks the snapshot to restore: --snapshot, else the newest. A damaged or foreign
// snapshot (unreadable metadata, or another target's) is never restored: when it is the one
// asked for, or the newest (the newest backup is the one that matters: silently restoring an
// older one would prove the wrong thing), the drill fails with a snapshot-integrity finding
// naming it and why.
func (r *run) selectSnapshot(ctx context.Context) (*snapshot.Metadata, error) {
	refuse := func(m snapshot.Metadata, newest bool) error {
		r.res.Snapshot = &reports.SnapshotRef{ID: m.ID, TakenAt: m.TakenAt, Driver: m.Driver, AgeSeconds: r.start.Sub(m.TakenAt).Seconds()}
		what, hint := "snapshot "+m.ID, ""
		if newest {
			what, hint = "the newest snapshot, "+m.ID+",", " (after looking at it, drill an older one with --snapshot)"
		}
		r.res.Checks = append(r.res.Checks, checks.Failf(SnapshotIntegrityName,
			checks.Evidence{"snapshot": m.ID, "status": m.Status, "reason": m.Reason, "newest": newest},
			"%s is %s: %s; nothing was restored%s", what, m.Status, m.Reason, hint))
		return fmt.Errorf("%w: %s is %s: %s", snapshot.ErrDamaged, what, m.Status, m.Reason)
	}
	if r.o.SnapshotID != "" {
		m, err := r.d.Source.Get(ctx, r.o.SnapshotID)
		var de *snapshot.DamagedError
		if errors.As(err, &de) {
			return nil, refuse(de.Snapshot, false)
		}
		if errors.Is(err, snapshot.ErrNotFound) {
			return nil, fmt.Errorf("%w: %w (list them with: firedrill snapshots --target %s)", ErrUsage, err, r.o.Target)
		}
		return m, err
	}
	list := r.d.Source.List
	// Sources that can tell (the local repository) list damaged snapshots too.
	if all, ok := r.d.Source.(interface {
		ListAll(ctx context.Context) ([]snapshot.Metadata, error)
	}); ok {
		list = all.ListAll
	}
	snaps, err := list(ctx)
	if err != nil {
		return nil, fmt.Errorf("while listing snapshots of %s: %w", r.o.Target, err)
	}
	if len(snaps) > 0 && !snaps[0].Restorable() {
		return nil, refuse(snaps[0], true)
	}
	var pick *snapshot.Metadata
	for i := range snaps {
		switch {
		case !snaps[i].Restorable():
			r.d.Log.Warn("an older snapshot is not restorable", "target", r.o.Target, "snapshot", snaps[i].ID, "status", snaps[i].Status, "reason", snaps[i].Reason)
		case pick == nil:
			pick = &snaps[i]
		}
	}
	if pick != nil {
		return pick, nil
	}
	return nil, fmt.Errorf("%w: target %s has no complete snapshot; take one with: firedrill snapshot --target %s", snapshot.ErrNotFound, r.o.Target, r.o.Target)
}

// setRecoveryPoint takes the freshness check's timestamp, else that of a source's own check
// (the last transaction a WAL replay reached), else the snapshot's stop time.
func (r *run) setRecoveryPoint(meta *snapshot.Metadata) {
	for _, f := range r.res.Checks {
		if f.Check == checks.FreshnessName {
			if t, ok := f.Evidence[checks.EvidenceRecoveryPoint].(time.Time); ok {
				r.res.RecoveryPoint, r.res.RecoveryPointSource = &t, "freshness"
				return
			}
		}
	}
	if r.copy != nil {
		for _, f := range r.res.Checks {
			if t, ok := f.Evidence[checks.EvidenceRecoveryPoint].(time.Time); ok && slices.ContainsFunc(r.copy.Checks, func(c checks.Check) bool { return c.Name() == f.Check }) {
				r.res.RecoveryPoint, r.res.RecoveryPointSource = &t, f.Check
				return
			}
		}
	}
	t := meta.TakenAt.UTC()
	r.res.RecoveryPoint, r.res.RecoveryPointSource = &t, "snapshot"
}

// teardown stops the server and removes the scratch directory, unless --keep asked to leave a
// verified copy. ctx is never cancelled (an interrupted drill still cleans up).
func (r *run) teardown(ctx context.Context, scratch string, proc server, log *slog.Logger) error {
	if r.o.Keep && r.res.Kept != nil {
		return nil
	}
	if r.phase != "teardown" {
		r.begin("teardown")
	}
	var errs []error
	if proc != nil && proc.Running() {
		if _, err := proc.Stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if proc != nil {
		if err := proc.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.copy != nil && r.copy.Release != nil && !r.o.Keep {
		// The drill's own context may be cancelled: teardown gets a bounded one of its own.
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := r.copy.Release(rctx); err != nil {
			errs = append(errs, fmt.Errorf("while removing the scratch copy: %w", err))
		}
		cancel()
	}
	if r.o.Keep {
		r.res.Kept = &reports.Kept{ScratchDir: scratch}
		if proc != nil {
			r.res.Kept.ServerLog = proc.ServerLog()
		}
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(scratch); err != nil {
		errs = append(errs, fmt.Errorf("while removing scratch directory %s: %w", scratch, err))
	}
	log.Debug("teardown done", "scratch", scratch)
	return errors.Join(errs...)
}

func makeScratch(root, target, id string, runAs postgres.RunAs) (string, error) {
	if root == "" {
		root = os.TempDir()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("while creating scratch root %s: %w", root, err)
	}
	dir := filepath.Join(root, dirscratch.DirName(target, id))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("while creating scratch directory %s: %w", dir, err)
	}
	if err := runAs.Chown(dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("while handing scratch directory %s to %s: %w", dir, runAs.Name, err)
	}
	if !runAs.IsCurrent() {
		if err := traversable(root); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("scratch directory %s is not reachable by user %s (%v): choose restore.local.scratchDir under a directory others can traverse (chmod o+x), such as /var/tmp", root, runAs.Name, err)
		}
	}
	return dir, nil
}

// traversable checks every ancestor of dir is searchable by others (the run-as user).
func traversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func integrityFinding(c *snapshot.CloneResult) checks.Finding {
	ev := checks.Evidence{"filesVerified": c.Verified, "bytes": c.Bytes, "algorithm": "sha256"}
	if len(c.Mismatches) > 0 {
		ev["mismatches"] = c.Mismatches
		return checks.Failf(SnapshotIntegrityName, ev, "%d file(s) differ from the snapshot's manifest, first: %s", len(c.Mismatches), c.Mismatches[0])
	}
	return checks.Passf(SnapshotIntegrityName, ev, "%d files match the snapshot's SHA-256 manifest", c.Verified)
}

// recoveryFinding records how recovery went and checks the copy is the cluster that was
// snapshotted.
func recoveryFinding(ctx context.Context, p Throwaway, meta *snapshot.Metadata) checks.Finding {
	ev := checks.Evidence{"serverLog": p.LogEvidence(15), "stopLsn": meta.StopLSN}
	conn, err := p.Connect(ctx, "postgres")
	if err != nil {
		return checks.Errorf(RecoveryName, ev, "recovered, but a connection failed: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var sysid int64
	var version, lsn string
	if err := conn.QueryRow(ctx, "SELECT system_identifier, current_setting('server_version'), pg_current_wal_lsn()::text FROM pg_control_system()").Scan(&sysid, &version, &lsn); err != nil {
		return checks.Errorf(RecoveryName, ev, "recovered, but reading pg_control failed: %v", err)
	}
	ev["systemIdentifier"] = fmt.Sprint(sysid)
	ev["serverVersion"] = version
	ev["walLsn"] = lsn
	if want := meta.Attributes[postgres.AttrSystemID]; want != "" && want != fmt.Sprint(sysid) {
		return checks.Failf(RecoveryName, ev, "the restored copy has system identifier %d, but the snapshot was taken of %s", sysid, want)
	}
	return checks.Passf(RecoveryName, ev, "recovered to a consistent state and accepts connections (%s)", strings.TrimSpace(version))
}

// recoveryFatal is the startup process's FATAL or PANIC line in a server log, not those of
// connections refused while it recovered.
func recoveryFatal(lines []string) string {
	for _, l := range lines {
		_, msg, ok := strings.Cut(l, "FATAL:  ")
		if !ok {
			_, msg, ok = strings.Cut(l, "PANIC:  ")
		}
		if !ok || strings.Contains(msg, "the database system is") || strings.Contains(msg, "not yet accepting connections") {
			continue
		}
		return strings.TrimSpace(msg)
	}
	return ""
}

func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type nopProgress struct{}

func (nopProgress) Phase(string)  {}
func (nopProgress) Status(string) {}
