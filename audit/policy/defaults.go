package policy

import (
	"os"
	"path/filepath"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine"
)

// Every default of the configuration is in this file, with the code that applies them (the
// README's reference repeats them). Target, restore and objectives defaults:
const (
	DefaultEngine         = "postgres"
	DefaultSnapshotDriver = "local"
	DefaultSnapshotMode   = "online"
	DefaultRuntime        = "local"
	DefaultSource         = SourceSnapshots
	// restore.source kind dump: every file of the directory, pg_restore --jobs 2.
	DefaultDumpPattern   = "*"
	DefaultDumpJobs      = 2
	DefaultListen        = "socket"
	DefaultCopyParallel  = 4
	DefaultCheckParallel = 2
	DefaultDatabase      = "postgres"
	DefaultRTO           = time.Hour
	DefaultRPO           = 24 * time.Hour
	DefaultDrillEvery    = 31 * 24 * time.Hour
	DefaultStartTimeout  = 30 * time.Minute
	// restore.docker: the image defaults to postgres:<major> of the snapshot (not a constant).
	DefaultDockerMemory = "2GiB"
	DefaultDockerCPUs   = 2.0
	// restore.kubernetes: the image defaults to postgres:<major> of the snapshot, fsGroup to
	// runAsUser (999: the official postgres image's user).
	DefaultScratchNamespace                = "firedrill-scratch"
	DefaultKubernetesPort                  = 5432
	DefaultKubernetesRunAsUser       int64 = 999
	DefaultKubernetesConnect               = KubernetesConnectAuto
	DefaultKubernetesCPURequest            = "250m"
	DefaultKubernetesMemoryRequest         = "512Mi"
	DefaultKubernetesMemoryLimit           = "2Gi"
	DefaultKubernetesBindTimeout           = 10 * time.Minute
	DefaultKubernetesScheduleTimeout       = 5 * time.Minute
	DefaultKubernetesStartTimeout          = 10 * time.Minute
	// DefaultKubernetesReadyTimeout bounds recovery, as restore.local.startTimeout does.
	DefaultKubernetesReadyTimeout = 30 * time.Minute
	// DefaultAuditFutureTolerance is how far ahead of the auditor's clock a backup may be dated
	// (clock skew between writer, store and auditor) before it is reported as future-dated.
	DefaultAuditFutureTolerance = 5 * time.Minute
)

// Defaults of the snapshot-taking core (the README's reference repeats them).
const (
	// DefaultMaxFreeze bounds how long a database stays locked for a snapshot.
	DefaultMaxFreeze = 60 * time.Second
	// DefaultCSIReadyTimeout bounds the wait for a cut VolumeSnapshot to become readyToUse:
	// uploading a snapshot to slow storage can take minutes, but the database is thawed by then.
	DefaultCSIReadyTimeout = 10 * time.Minute
)

// DefaultGroupSelectorKey is the PVC label a group's VolumeGroupSnapshot selects by when
// groups[].csi.selector is not set; its value is the group's name.
const DefaultGroupSelectorKey = "firedrill.io/group"

// Auditor defaults (the README's reference repeats them).
const (
	DefaultAuditMaxReady     = 16
	DefaultAuditIdleWALBytes = 8 << 10
	DefaultAuditMinBytes     = 1
	DefaultAuditMaxDrop      = 0.5
	DefaultAuditMaxGrowth    = 1.0
	DefaultAuditSizeHistory  = 7
	DefaultAuditMinCopies    = 3
	DefaultAuditMinMedia     = 2
	DefaultAuditMinOffsite   = 1
	DefaultAuditMinImmutable = 1
	DefaultAuditImmutableFor = 30 * 24 * time.Hour
	DefaultAuditSourceName   = "snapshots"
	// DefaultAuditFailureGrace: the archiver retries a failed segment about every minute, so a
	// segment that still waits five minutes after a failed attempt is stuck, not unlucky.
	DefaultAuditFailureGrace = 5 * time.Minute
	DefaultAuditVerify       = VerifyStore
	// DefaultAuditImmutableMode counts GOVERNANCE and COMPLIANCE retention alike.
	DefaultAuditImmutableMode = ImmutableAny
	// DefaultAuditReadBytesPerSecond bounds copies.verify: read (64 MiB/s for all reads of a check).
	DefaultAuditReadBytesPerSecond = 64 << 20
)

// DefaultHistoryDir is $XDG_STATE_HOME/firedrill/history, else ~/.local/state/firedrill/history.
func DefaultHistoryDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "firedrill", "history")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "firedrill", "history")
	}
	return filepath.Join(os.TempDir(), "firedrill", "history")
}

// serve: the daemon.
const (
	DefaultServeListen        = ":9187"
	DefaultServeAuditInterval = 5 * time.Minute
	DefaultServeJitter        = 5 * time.Minute
	DefaultServeConcurrency   = 1
	DefaultServeShutdownGrace = 2 * time.Minute
)

func applyServeDefaults(c *Config) {
	setStr(&c.Serve.Listen, DefaultServeListen)
	setDur(&c.Serve.AuditInterval, DefaultServeAuditInterval)
	setDur(&c.Serve.Jitter, DefaultServeJitter)
	if c.Serve.Concurrency == 0 {
		c.Serve.Concurrency = DefaultServeConcurrency
	}
	setDur(&c.Serve.ShutdownGrace, DefaultServeShutdownGrace)
	for i := range c.Targets {
		setDur(&c.Targets[i].Audit.Interval, c.Serve.AuditInterval.Duration)
	}
}

func applyDefaults(c *Config) {
	if c.History.Dir == "" {
		c.History.Dir = DefaultHistoryDir()
	}
	if c.History.EvidenceDir == "" {
		c.History.EvidenceDir = EvidenceDirDefault(c.History.Dir)
	}
	defer applyServeDefaults(c)
	for i := range c.Targets {
		t := &c.Targets[i]
		setStr(&t.Engine, DefaultEngine)
		setStr(&t.Snapshot.Driver, DefaultSnapshotDriver)
		setStr(&t.Snapshot.Mode, DefaultSnapshotMode)
		if t.Snapshot.FastCheckpoint == nil {
			t.Snapshot.FastCheckpoint = ptr(true)
		}
		if t.Snapshot.Local.Parallel == 0 {
			t.Snapshot.Local.Parallel = DefaultCopyParallel
		}
		setStr(&t.Restore.Runtime, DefaultRuntime)
		setStr(&t.Restore.Source.Kind, DefaultSource)
		setStr(&t.Restore.Source.Pattern, DefaultDumpPattern)
		if t.Restore.Source.Physical() {
			setStr(&t.Restore.Source.Recovery.Target, DefaultRecoveryTarget)
		}
		if t.Restore.Source.Jobs == 0 {
			t.Restore.Source.Jobs = DefaultDumpJobs
		}
		setStr(&t.Restore.Local.Listen, DefaultListen)
		setStr(&t.Restore.Local.ScratchDir, os.TempDir())
		if t.Restore.Local.IsolateNetwork == nil {
			t.Restore.Local.IsolateNetwork = ptr(true)
		}
		setDur(&t.Restore.Local.StartTimeout, DefaultStartTimeout)
		setStr(&t.Restore.Docker.Memory, DefaultDockerMemory)
		if t.Restore.Docker.CPUs == nil {
			t.Restore.Docker.CPUs = ptr(DefaultDockerCPUs)
		}
		applyKubernetesDefaults(&t.Restore.Kubernetes)
		setDur(&t.Objectives.RTO, DefaultRTO)
		setDur(&t.Objectives.RPO, DefaultRPO)
		setDur(&t.Objectives.DrillEvery, DefaultDrillEvery)
		ch := &t.Checks
		if ch.Amcheck == nil {
			ch.Amcheck = &checks.AmcheckConfig{}
		}
		if ch.Amcheck.Enabled == nil {
			ch.Amcheck.Enabled = ptr(true)
		}
		if ch.Amcheck.FullEveryDuration == 0 {
			// Validation reports a fullEvery that does not parse; here it reads as the default.
			if d, err := ParseDuration(ch.Amcheck.FullEvery); err == nil && d > 0 {
				ch.Amcheck.FullEveryDuration = d
			} else {
				ch.Amcheck.FullEveryDuration = checks.DefaultAmcheckFullEvery
			}
		}
		if ch.Checksums == nil {
			ch.Checksums = ptr(true)
		}
		if ch.RowCounts == nil {
			ch.RowCounts = &checks.RowCountConfig{}
		}
		if ch.RowCounts.Enabled == nil {
			ch.RowCounts.Enabled = ptr(true)
		}
		if ch.Parallel == 0 {
			ch.Parallel = DefaultCheckParallel
		}
		// SQL checks connect to the engine's default database (PostgreSQL's postgres; a
		// MariaDB query names its schema).
		db := DefaultDatabase
		if sp, ok := engine.Lookup(t.Engine); ok {
			db = sp.DefaultDatabase
		}
		for j := range ch.SQL {
			setStr(&ch.SQL[j].Database, db)
		}
		if ch.Freshness != nil && ch.Freshness.Key == "" {
			setStr(&ch.Freshness.Database, db)
		}
	}
	// The audit defaults read objectives.rpo; a group's maxFreeze reads its members'.
	applyAuditDefaults(c)
	applySnapshotDefaults(c)
}

func applyKubernetesDefaults(k *KubernetesRuntime) {
	setStr(&k.Namespace, DefaultScratchNamespace)
	if k.Port == 0 {
		k.Port = DefaultKubernetesPort
	}
	if k.RunAsUser == nil {
		k.RunAsUser = ptr(DefaultKubernetesRunAsUser)
	}
	if k.FSGroup == nil {
		k.FSGroup = ptr(*k.RunAsUser)
	}
	setStr(&k.Connect, DefaultKubernetesConnect)
	// A map given in the file replaces the default whole ({} for none).
	if k.Resources.Requests == nil {
		k.Resources.Requests = map[string]string{"cpu": DefaultKubernetesCPURequest, "memory": DefaultKubernetesMemoryRequest}
	}
	if k.Resources.Limits == nil {
		k.Resources.Limits = map[string]string{"memory": DefaultKubernetesMemoryLimit}
	}
	setDur(&k.Timeouts.Bind, DefaultKubernetesBindTimeout)
	setDur(&k.Timeouts.Schedule, DefaultKubernetesScheduleTimeout)
	setDur(&k.Timeouts.Start, DefaultKubernetesStartTimeout)
	setDur(&k.Timeouts.Ready, DefaultKubernetesReadyTimeout)
}

func applySnapshotDefaults(c *Config) {
	for i := range c.Targets {
		t := &c.Targets[i]
		setDur(&t.Snapshot.MaxFreeze, DefaultMaxFreeze)
		setDur(&t.Snapshot.CSI.ReadyTimeout, DefaultCSIReadyTimeout)
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.CSI.VolumeGroupSnapshot == "" {
			g.CSI.VolumeGroupSnapshot = GroupSnapshotAuto
		}
		if len(g.CSI.Selector) == 0 && nameRe.MatchString(g.Name) {
			g.CSI.Selector = map[string]string{DefaultGroupSelectorKey: g.Name}
		}
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.MaxFreeze.Duration != 0 {
			continue
		}
		g.MaxFreeze.Duration = DefaultMaxFreeze
		first := true
		for _, name := range g.Targets {
			if t, ok := c.Target(name); ok && (first || t.Snapshot.MaxFreeze.Duration < g.MaxFreeze.Duration) {
				g.MaxFreeze.Duration, first = t.Snapshot.MaxFreeze.Duration, false
			}
		}
	}
}

func applyAuditDefaults(c *Config) {
	base := ""
	if c.File != "" {
		base = filepath.Dir(c.File)
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) && base != "" {
			*p = filepath.Join(base, *p)
		}
	}
	for i := range c.Locations {
		l := &c.Locations[i]
		switch l.Kind {
		case LocationS3:
			setStr(&l.Media, MediaObjectStorage)
			setStr(&l.Region, l.S3.Region)
			setStr(&l.Provider, providerOf(l.S3.Endpoint))
			abs(&l.S3.Credentials.File)
		case LocationDirectory, LocationSnapshots:
			setStr(&l.Media, MediaDisk)
			abs(&l.Path)
		}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		a := &t.Audit
		if len(a.Sources) == 0 && hasOwnSnapshots(t) {
			a.Sources = []AuditSource{{Name: DefaultAuditSourceName}}
		} else if src, ok := dumpAuditSource(t); ok && len(a.Sources) == 0 {
			a.Sources = []AuditSource{src}
		} else if len(a.Sources) == 0 && t.Restore.Source.ListsBackups() {
			a.Sources = []AuditSource{{Name: DefaultPhysicalAuditSourceName}}
		}
		for j := range a.Sources {
			s := &a.Sources[j]
			if s.Location == "" {
				setStr(&s.Name, DefaultAuditSourceName)
			}
			setStr(&s.Name, s.Location)
		}
		if a.WAL.MaxReady == 0 {
			a.WAL.MaxReady = DefaultAuditMaxReady
		}
		if a.WAL.IdleWALBytes == 0 {
			a.WAL.IdleWALBytes = DefaultAuditIdleWALBytes
		}
		setDur(&a.WAL.FailureGrace, DefaultAuditFailureGrace)
		if a.WAL.Archive != nil {
			abs(&a.WAL.Archive.Path)
		}
		setDur(&a.FutureTolerance, DefaultAuditFutureTolerance)
		if a.Size.MinBytes == 0 {
			a.Size.MinBytes = DefaultAuditMinBytes
		}
		if a.Size.MaxDrop == 0 {
			a.Size.MaxDrop = DefaultAuditMaxDrop
		}
		if a.Size.MaxGrowth == 0 {
			a.Size.MaxGrowth = DefaultAuditMaxGrowth
		}
		if a.Size.History == 0 {
			a.Size.History = DefaultAuditSizeHistory
		}
		cp := &a.Copies
		if cp.Primary == "" && len(a.Sources) > 0 {
			cp.Primary = a.Sources[0].Name
		}
		if len(cp.In) == 0 {
			for _, s := range a.Sources {
				cp.In = append(cp.In, s.Name)
			}
		}
		if cp.LiveDatabase == nil {
			cp.LiveDatabase = ptr(true)
		}
		if cp.MinCopies == 0 {
			cp.MinCopies = DefaultAuditMinCopies
		}
		if cp.MinMedia == 0 {
			cp.MinMedia = DefaultAuditMinMedia
		}
		if cp.MinOffsite == nil {
			cp.MinOffsite = ptr(DefaultAuditMinOffsite)
		}
		if cp.MinImmutable == nil {
			cp.MinImmutable = ptr(DefaultAuditMinImmutable)
		}
		setDur(&cp.ImmutableFor, DefaultAuditImmutableFor)
		setStr(&cp.Verify, DefaultAuditVerify)
		setStr(&cp.ImmutableMode, DefaultAuditImmutableMode)
		if cp.ReadBytesPerSecond == 0 {
			cp.ReadBytesPerSecond = DefaultAuditReadBytesPerSecond
		}
		setDur(&cp.MaxLag, t.Objectives.RPO.Duration)
		if a.Site == (Site{}) {
			for _, s := range a.Sources {
				if s.Name != cp.Primary || s.Location == "" {
					continue
				}
				if l, ok := c.Location(s.Location); ok {
					a.Site = Site{Region: l.Region, Provider: l.Provider}
				}
			}
		}
	}
}

func setStr(p *string, d string) {
	if *p == "" {
		*p = d
	}
}

func setDur(p *Duration, d time.Duration) {
	if p.Duration == 0 && !p.set {
		p.Duration = d
	}
}

func ptr[T any](v T) *T { return &v }
