package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// ReportSchemaVersion is the version of Report's JSON.
const ReportSchemaVersion = 1

// Report is the outcome of one audit run: per target, one finding per check.
type Report struct {
	SchemaVersion int            `json:"schemaVersion"`
	GeneratedAt   time.Time      `json:"generatedAt"`
	Targets       []TargetReport `json:"targets"`
}

// TargetReport is one target's findings, in policy.AuditChecks order.
type TargetReport struct {
	Target   string           `json:"target"`
	Findings []checks.Finding `json:"findings"`
}

// Status is the status that decides the audit, by checks.Decisive's precedence: any failed
// check fails it whatever else could not be checked.
func (r *Report) Status() checks.Status {
	w := checks.Pass
	for _, t := range r.Targets {
		w = checks.Decisive(w, checks.Worst(t.Findings))
	}
	return w
}

// Failed reports whether any check failed (the audit fails, exit 1).
func (r *Report) Failed() bool { return r.Status() == checks.Fail }

// CouldNotCheck reports whether the audit's outcome is "could not check" (exit 3): a check could
// not run (a source could not be read) and none failed.
func (r *Report) CouldNotCheck() bool { return r.Status() == checks.Error }

// Connector opens a connection to a target's database for the WAL check.
type Connector func(ctx context.Context, dsn string) (DBConn, error)

// DBConn is a database connection the WAL check queries and then closes.
type DBConn interface {
	Querier
	Close(ctx context.Context) error
}

// S3Factory builds the client of an S3 location.
type S3Factory func(ctx context.Context, l *policy.Location) (S3API, error)

// SourceBuilder builds a source of a location kind the auditor does not know itself (CSI
// VolumeSnapshots, from restore/snapshot/csi). It returns the source and its family.
type SourceBuilder func(ctx context.Context, t *policy.Target, l *policy.Location, s policy.AuditSource) (Source, string, error)

// Auditor runs the audit checks. Its clients are built once per run and shared by targets.
type Auditor struct {
	// Now is the clock every age is measured with.
	Now     func() time.Time
	Log     *slog.Logger
	History DrillHistory
	// Connect defaults to pgx.Connect.
	Connect Connector
	// NewS3 defaults to NewS3Client.
	NewS3 S3Factory
	// Kinds adds source kinds by location kind.
	Kinds map[string]SourceBuilder
	// Snapshots returns a target's own snapshot store (its snapshot driver: the local
	// repository, or CSI VolumeSnapshots), the source of audit.sources entries without a
	// location. Default: the local repository.
	Snapshots func(ctx context.Context, t *policy.Target) (SnapshotLister, error)
	// Parallel is how many sources of a target are listed at once (default 4).
	Parallel int
	// State keeps what each audit saw of WAL archiving for the next one, so archive failures
	// are counted since the previous audit (nil: since the statistics reset, or within the RPO).
	State StateStore

	mu      sync.Mutex
	clients map[string]s3Client
}

type s3Client struct {
	api S3API
	err error
}

// Audit runs every check of every target given and returns one report. Problems reading a
// source or a database are findings (status error), not errors: the run goes on.
func (a *Auditor) Audit(ctx context.Context, cfg *policy.Config, targets []policy.Target) *Report {
	now := a.now()
	rep := &Report{SchemaVersion: ReportSchemaVersion, GeneratedAt: now.UTC()}
	for i := range targets {
		rep.Targets = append(rep.Targets, a.auditTarget(ctx, cfg, &targets[i], now))
	}
	return rep
}

func (a *Auditor) auditTarget(ctx context.Context, cfg *policy.Config, t *policy.Target, now time.Time) TargetReport {
	log := a.log().With("target", t.Name)
	spec := &t.Audit
	tr := TargetReport{Target: t.Name}
	run := func(name string) bool { return !spec.Skips(name) }
	timed := func(f func() checks.Finding) {
		start := time.Now()
		fd := f()
		fd.Seconds = time.Since(start).Seconds()
		log.Debug("audit check", "check", fd.Check, "status", fd.Status.String(), "message", fd.Message)
		tr.Findings = append(tr.Findings, fd)
	}
	if spec, ok := engine.Lookup(t.Engine); ok && spec.WALArchiving && run(policy.CheckWALArchiving) {
		timed(func() checks.Finding { return a.wal(ctx, cfg, t, now) })
	}
	if t.Restore.Source.Physical() && run(policy.CheckWALContinuity) {
		timed(func() checks.Finding { return a.walContinuity(ctx, t) })
	}
	needSources := run(policy.CheckBackupAge) || run(policy.CheckBackupSize) || run(policy.CheckCopies)
	var sources []*SourceState
	if needSources && len(spec.Sources) > 0 {
		start := time.Now()
		sources = a.sources(ctx, cfg, t, now)
		log.Debug("listed backup sources", "sources", len(spec.Sources), "seconds", time.Since(start).Seconds())
	}
	if len(sources) > 0 {
		if run(policy.CheckBackupAge) {
			timed(func() checks.Finding { return CheckBackupAge(sources, t.Objectives.RPO.Duration, now) })
		}
	}
	if run(policy.CheckBackupIntegrity) {
		// Only where a snapshot repository holds something to judge (integrity.go).
		start := time.Now()
		if fd, ok := a.integrity(ctx, cfg, t); ok {
			fd.Seconds = time.Since(start).Seconds()
			log.Debug("audit check", "check", fd.Check, "status", fd.Status.String(), "message", fd.Message)
			tr.Findings = append(tr.Findings, fd)
		}
	}
	if len(sources) > 0 {
		if run(policy.CheckBackupSize) {
			timed(func() checks.Finding { return CheckBackupSize(sources, spec.Size) })
		}
		if run(policy.CheckCopies) {
			timed(func() checks.Finding {
				in := CopiesInput{Primary: spec.Copies.Primary, LiveDatabase: *spec.Copies.LiveDatabase, Spec: spec.Copies, MinBytes: spec.Size.MinBytes, Now: now}
				for _, n := range spec.Copies.In {
					for _, s := range sources {
						if s.Name == n {
							in.Sources = append(in.Sources, s)
						}
					}
				}
				return CheckCopies(ctx, in)
			})
		}
	}
	if run(policy.CheckDrillRecency) && a.History != nil {
		timed(func() checks.Finding {
			return CheckDrillRecency(ctx, a.History, t.Name, t.Objectives.DrillEvery.Duration, now)
		})
	}
	return tr
}

func (a *Auditor) wal(ctx context.Context, cfg *policy.Config, t *policy.Target, now time.Time) checks.Finding {
	fail := func(what string, err error) checks.Finding {
		return checks.Errorf(policy.CheckWALArchiving, checks.Evidence{"error": errLine(err), "reasons": []string{ReasonUnreadable},
			"cause": CauseField(err)}, "could not %s the database: %s", what, errLine(err))
	}
	dsn, err := t.DSN()
	if err != nil {
		return fail("connect to", err)
	}
	connect := a.Connect
	if connect == nil {
		connect = func(ctx context.Context, dsn string) (DBConn, error) { return pgx.Connect(ctx, dsn) }
	}
	conn, err := connect(ctx, dsn)
	if err != nil {
		return fail("connect to", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	st, err := ReadArchiver(ctx, conn, t.Audit.WAL.MaxReplicationLag.Duration > 0)
	if err != nil {
		return fail("query", err)
	}
	in := WALInput{RPO: t.Objectives.RPO.Duration, Spec: t.Audit.WAL, Now: now}
	// The archive is listed after pg_stat_archiver is read: what it names was archived before.
	if src, where, err := a.walArchive(ctx, cfg, t); err != nil {
		in.Archive = &ArchiveCheck{Where: where, Err: err, Error: errLine(err), Cause: CauseField(err)}
	} else if src != nil {
		in.Archive = CheckArchive(ctx, src, where, st)
	}
	prev, note := a.walHistory(ctx, t.Name, st, now)
	in.Previous = prev
	f := EvaluateWALWith(st, in)
	if note != "" {
		f.Evidence["stateError"] = note
	}
	return f
}

// sources lists every source of a target, a few at a time, each into a bounded summary.
func (a *Auditor) sources(ctx context.Context, cfg *policy.Config, t *policy.Target, now time.Time) []*SourceState {
	spec := &t.Audit
	keep := spec.Size.History + 1
	out := make([]*SourceState, len(spec.Sources))
	n := a.Parallel
	if n <= 0 {
		n = 4
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, s := range spec.Sources {
		st, src := a.build(ctx, cfg, t, s)
		out[i] = st
		if st.Err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// Backups dated past the tolerance are set aside: never the newest (age, size, copies).
			sum, err := SummarizeInto(ctx, NewSummary(st.Name, keep, spec.Size.MinBytes).NotAfter(now.Add(spec.FutureTolerance.Duration)), src)
			if err != nil {
				st.Err = &SourceError{Source: st.Name, Where: st.Where, Op: "listing", Err: err}
				return
			}
			st.Summary = sum
		}()
	}
	wg.Wait()
	return out
}

// build makes the source of one configured source; a failure is recorded in the state.
func (a *Auditor) build(ctx context.Context, cfg *policy.Config, t *policy.Target, s policy.AuditSource) (*SourceState, Source) {
	st := &SourceState{Name: s.Name, Location: s.Location}
	if t.DumpAuditSource(s) {
		// The dump files the target's drills restore (restore.source.dir).
		dir := t.Restore.Source.Dir
		st.Where, st.Family, st.Media = "directory "+dir, FamilyObjects, policy.MediaDisk
		src := &DirSource{Dir: dir, Match: s.Match}
		st.Stat, st.Reader, st.Claims = claimedOnly{src}, src, src
		return st, src
	}
	if s.Location == "" && t.Restore.Source.ListsBackups() && a.Snapshots != nil {
		// The base backups, pgBackRest or engine-native backups the target's drills restore.
		st.Family, st.Media = FamilySnapshots, policy.MediaDisk
		st.Where = t.Restore.Source.Kind + " backups in " + t.Restore.Source.Dir
		if t.Restore.Source.Kind == policy.SourcePgBackRest {
			st.Where = "pgBackRest stanza " + t.Restore.Source.Stanza
		}
		l, err := a.Snapshots(ctx, t)
		if err != nil {
			st.Err = &SourceError{Source: s.Name, Where: st.Where, Op: "connecting to", Err: err}
			return st, nil
		}
		return st, &SnapshotSource{Lister: l}
	}
	if s.Location == "" {
		st.Family, st.Media = FamilySnapshots, policy.MediaDisk
		st.Where = "snapshot repository " + t.Snapshot.Local.Repository
		if t.Snapshot.Driver == "csi" {
			st.Media = policy.MediaVolumeSnap
			st.Where = "CSI VolumeSnapshots in namespace " + t.Snapshot.CSI.Namespace
		}
		if a.Snapshots == nil {
			return st, &SnapshotSource{Lister: local.NewForTarget(t.Snapshot.Local.Repository, t.Name, 1)}
		}
		l, err := a.Snapshots(ctx, t)
		if err != nil {
			st.Err = &SourceError{Source: s.Name, Where: st.Where, Op: "connecting to", Err: err}
			return st, nil
		}
		return st, &SnapshotSource{Lister: l}
	}
	l, ok := cfg.Location(s.Location)
	if !ok { // validation prevents it
		st.Err = &SourceError{Source: s.Name, Where: s.Location, Op: "finding", Err: fmt.Errorf("no location %q", s.Location)}
		return st, nil
	}
	st.Media, st.Offsite = l.Media, l.IsOffsite(t.Audit.Site)
	switch l.Kind {
	case policy.LocationS3:
		prefix := l.S3.Prefix + s.Prefix
		st.Where = fmt.Sprintf("s3://%s/%s at %s", l.S3.Bucket, prefix, s3Endpoint(l))
		st.Family = FamilyObjects
		api, err := a.s3(ctx, l)
		if err != nil {
			st.Err = &SourceError{Source: s.Name, Where: st.Where, Op: "connecting to", Err: err}
			return st, nil
		}
		src := &S3Source{Client: api, Bucket: l.S3.Bucket, Prefix: prefix, Match: s.Match}
		st.Stat, st.Locker, st.Reader, st.Claims = src, src, src, src
		return st, src
	case policy.LocationDirectory:
		dir := filepath.Join(l.Path, filepath.FromSlash(path.Clean("/"+s.Prefix)))
		st.Where, st.Family = "directory "+dir, FamilyObjects
		src := &DirSource{Dir: dir, Match: s.Match}
		st.Stat, st.Reader, st.Claims = claimedOnly{src}, src, src
		return st, src
	case policy.LocationSnapshots:
		st.Where, st.Family = "snapshot repository "+l.Path, FamilySnapshots
		return st, &SnapshotSource{Lister: local.NewForTarget(l.Path, t.Name, 1)}
	}
	if b, ok := a.Kinds[l.Kind]; ok {
		src, fam, err := b(ctx, t, l, s)
		st.Where, st.Family = l.Kind+" location "+l.Name, fam
		if err != nil {
			st.Err = &SourceError{Source: s.Name, Where: st.Where, Op: "connecting to", Err: err}
			return st, nil
		}
		if x, ok := src.(Stater); ok {
			st.Stat = x
		}
		if x, ok := src.(BucketLocker); ok {
			st.Locker = x
		}
		if x, ok := src.(opener); ok {
			st.Reader = x
		}
		if x, ok := src.(ClaimReader); ok {
			st.Claims = x
		}
		return st, src
	}
	st.Err = &SourceError{Source: s.Name, Where: l.Name, Op: "building", Err: fmt.Errorf("location kind %q is not supported by this build", l.Kind)}
	return st, nil
}

// s3 returns the location's client, built once per Auditor.
func (a *Auditor) s3(ctx context.Context, l *policy.Location) (S3API, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[l.Name]; ok {
		return c.api, c.err
	}
	f := a.NewS3
	if f == nil {
		f = func(ctx context.Context, l *policy.Location) (S3API, error) { return NewS3Client(ctx, l) }
	}
	api, err := f(ctx, l)
	if a.clients == nil {
		a.clients = map[string]s3Client{}
	}
	a.clients[l.Name] = s3Client{api: api, err: err}
	return api, err
}

func s3Endpoint(l *policy.Location) string {
	if l.S3.Endpoint == "" {
		return "AWS " + l.S3.Region
	}
	return policy.Redacted(l.S3.Endpoint) + " (" + l.S3.Region + ")"
}

func (a *Auditor) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

func (a *Auditor) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}
