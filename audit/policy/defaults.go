package policy

import (
	"github.com/firedrill/firedrill/checks"
	"os"
	"path/filepath"
	"time"
)

// Every default of the configuration, in one place (the README's reference repeats them).
const (
	DefaultEngine         = "postgres"
	DefaultSnapshotDriver = "local"
	DefaultSnapshotMode   = "online"
	DefaultRuntime        = "local"
	DefaultListen         = "socket"
	DefaultCopyParallel   = 4
	DefaultCheckParallel  = 2
	DefaultDatabase       = "postgres"
	DefaultRTO            = time.Hour
	DefaultRPO            = 24 * time.Hour
	DefaultDrillEvery     = 31 * 24 * time.Hour
	DefaultStartTimeout   = 30 * time.Minute
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

func applyDefaults(c *Config) {
	defer applySnapshotDefaults(c)
	defer applyAuditDefaults(c)
	if c.History.Dir == "" {
		c.History.Dir = DefaultHistoryDir()
	}
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
			ch.Amcheck = ptr(true)
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
		for j := range ch.SQL {
			setStr(&ch.SQL[j].Database, DefaultDatabase)
		}
		if ch.Freshness != nil {
			setStr(&ch.Freshness.Database, DefaultDatabase)
		}
	}
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
