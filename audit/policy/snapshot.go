package policy

// targets[].snapshot.* (local and csi drivers), targets[].retention and groups[].

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/firedrill/firedrill/restore/engine"
)

// SnapshotSpec is targets[].snapshot: how snapshots of the target are taken and where they are kept.
type SnapshotSpec struct {
	Driver string `yaml:"driver" json:"driver"`
	Mode   string `yaml:"mode" json:"mode"`
	// FastCheckpoint starts the backup with an immediate checkpoint (default true).
	FastCheckpoint *bool `yaml:"fastCheckpoint" json:"fastCheckpoint,omitempty"`
	// MaxFreeze bounds how long the database may stay frozen (locked) for a snapshot.
	MaxFreeze Duration      `yaml:"maxFreeze" json:"maxFreeze"`
	Local     LocalSnapshot `yaml:"local" json:"local"`
	CSI       CSISnapshot   `yaml:"csi" json:"csi"`
}

// LocalSnapshot is targets[].snapshot.local: the directory driver.
type LocalSnapshot struct {
	DataDir    string `yaml:"dataDir" json:"dataDir"`
	Repository string `yaml:"repository" json:"repository"`
	// Parallel is how many files are copied at once.
	Parallel int `yaml:"parallel" json:"parallel"`
}

// CSISnapshot is targets[].snapshot.csi: the Kubernetes CSI VolumeSnapshot driver.
type CSISnapshot struct {
	// Namespace holds the PVCs and the VolumeSnapshots.
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// PVC is the data volume's PersistentVolumeClaim.
	PVC string `yaml:"pvc" json:"pvc,omitempty"`
	// WALPVC is the PostgreSQL WAL volume (or another volume of the same database), snapshotted
	// in the same freeze as PVC.
	WALPVC string `yaml:"walPVC" json:"walPVC,omitempty"`
	// ClassName is the VolumeSnapshotClass.
	ClassName string `yaml:"className" json:"className,omitempty"`
	// ReadyTimeout bounds the wait for readyToUse after the cut (the database is thawed then).
	ReadyTimeout Duration `yaml:"readyTimeout" json:"readyTimeout"`
	// Kubeconfig is a kubeconfig file; empty uses $KUBECONFIG, ~/.kube/config or the in-cluster
	// service account.
	Kubeconfig string `yaml:"kubeconfig" json:"kubeconfig,omitempty"`
}

// Snapshot drivers this build supports (snapshot.driver). Engines and their modes are the
// engine registry's (restore/engine): engine.Names() and engine.AllModes().
var supportedDrivers = []string{"local", "csi"}

// validateSnapshot checks a target's snapshot keys (p is the target's path).
func validateSnapshot(p string, t *Target, add addFunc) {
	oneOf(add, p+".snapshot.driver", t.Snapshot.Driver, supportedDrivers)
	oneOf(add, p+".snapshot.mode", t.Snapshot.Mode, engine.AllModes())
	validateEngineMode(t, p, add)
	// A target drilled from dump files needs no snapshots of its own.
	if t.Snapshot.Driver == "local" && !t.Restore.Source.Foreign() && !t.AuditOnly() {
		if t.Snapshot.Local.DataDir == "" {
			add(p+".snapshot.local.dataDir", "required with driver local: the database's data directory")
		}
		if t.Snapshot.Local.Repository == "" {
			add(p+".snapshot.local.repository", "required with driver local: the directory that keeps this target's snapshots")
		}
	}
	if n := t.Snapshot.Local.Parallel; n < 1 || n > 64 {
		add(p+".snapshot.local.parallel", "must be between 1 and 64, got %d", n)
	}
	if t.Snapshot.MaxFreeze.Duration < time.Second || t.Snapshot.MaxFreeze.Duration > time.Hour {
		add(p+".snapshot.maxFreeze", "must be between 1s and 1h, got %s", t.Snapshot.MaxFreeze.Duration)
	}
	if t.Snapshot.Driver == "csi" {
		cs := t.Snapshot.CSI
		if cs.Namespace == "" {
			add(p+".snapshot.csi.namespace", "required with driver csi: the namespace of the PVCs")
		} else if !nameRe.MatchString(cs.Namespace) {
			add(p+".snapshot.csi.namespace", "%q is not a valid namespace name", cs.Namespace)
		}
		if cs.PVC == "" {
			add(p+".snapshot.csi.pvc", "required with driver csi: the data volume's PersistentVolumeClaim")
		}
		if cs.WALPVC != "" && cs.WALPVC == cs.PVC {
			add(p+".snapshot.csi.walPVC", "names the same PVC as pvc")
		}
		if cs.ClassName == "" {
			add(p+".snapshot.csi.className", "required with driver csi: the VolumeSnapshotClass")
		}
		if t.Snapshot.Mode == "crash-consistent" && cs.WALPVC != "" {
			add(p+".snapshot.mode", "crash-consistent mode needs data and WAL captured atomically, but walPVC puts them on two volumes snapshotted one after the other; use mode: online, or one volume")
		}
	}
}

// validateEngineMode checks engine, mode and driver against the engine's registry entry: the
// one source of which driver takes which mode of which engine (the snapshot core's
// take.Supported asks the same entry).
func validateEngineMode(t *Target, p string, add addFunc) {
	mode, driver := t.Snapshot.Mode, t.Snapshot.Driver
	if !contains(engine.AllModes(), mode) || !contains(supportedDrivers, driver) {
		return // already said: not a mode or driver at all
	}
	spec, ok := engine.Lookup(t.Engine)
	if !ok {
		// An unknown engine (already said): a mode the driver takes of no engine is still named.
		if !engine.AnyTakes(driver, mode) {
			driverRefusesMode(p, driver, mode, nil, add)
		}
		return
	}
	why, refused := spec.Refusals[driver]
	if refused {
		add(p+".snapshot.driver", "the %s driver refuses %s: %s", driver, t.Engine, why)
	}
	switch {
	case !spec.HasMode(mode):
		add(p+".snapshot.mode", "engine %s does not support mode %q (supported: %v)", t.Engine, mode, spec.Modes)
	case refused && !engine.AnyTakes(driver, mode), !refused && !spec.Takes(driver, mode):
		driverRefusesMode(p, driver, mode, spec, add)
	}
}

// driverRefusesMode says that driver cannot take mode, why, and what it takes instead.
func driverRefusesMode(p, driver, mode string, spec *engine.Spec, add addFunc) {
	if driver == "local" && mode == "crash-consistent" {
		add(p+".snapshot.mode", "the local driver refuses crash-consistent mode: a file-by-file copy of a running database is not atomic; use mode: online (or an atomic CSI snapshot)")
		return
	}
	if spec == nil {
		add(p+".snapshot.mode", "no engine supports mode %q with the %s driver", mode, driver)
		return
	}
	add(p+".snapshot.mode", "the %s driver cannot take %s snapshots of engine %s (it takes: %s)", driver, mode, spec.Name, strings.Join(spec.Drivers[driver], ", "))
}

// Retention is targets[].retention: which snapshots of a target to keep. With neither set, nothing is deleted.
// A snapshot is kept when either rule keeps it, and the newest snapshot whose last drill passed
// is always kept when it would otherwise be the last verified one to go.
type Retention struct {
	// KeepLast keeps the newest N snapshots.
	KeepLast int `yaml:"keepLast" json:"keepLast,omitempty"`
	// KeepWithin keeps snapshots younger than this.
	KeepWithin Duration `yaml:"keepWithin" json:"keepWithin"`
}

// Enabled reports whether any retention rule is set.
func (r Retention) Enabled() bool { return r.KeepLast > 0 || r.KeepWithin.Duration > 0 }

// validateRetention checks a target's retention keys.
func validateRetention(p string, r Retention, add addFunc) {
	if r.KeepLast < 0 {
		add(p+".keepLast", "must be zero (no count rule) or more, got %d", r.KeepLast)
	}
}

// Group is groups[]: a set of targets snapshotted together under one batch id.
type Group struct {
	Name    string   `yaml:"name" json:"name"`
	Targets []string `yaml:"targets" json:"targets"`
	// MaxFreeze bounds the total time any member stays frozen (default: the smallest member's
	// snapshot.maxFreeze).
	MaxFreeze Duration `yaml:"maxFreeze" json:"maxFreeze"`
	// CSI configures one atomic cut of the members' volumes by a VolumeGroupSnapshot.
	CSI GroupCSI `yaml:"csi" json:"csi"`
}

// When a group uses a VolumeGroupSnapshot (groups[].csi.volumeGroupSnapshot).
const (
	GroupSnapshotAuto     = "auto"
	GroupSnapshotRequired = "required"
	GroupSnapshotDisabled = "disabled"
)

// GroupCSI is groups[].csi: a group's VolumeGroupSnapshot. It applies when every member uses driver
// csi in one namespace.
type GroupCSI struct {
	// VolumeGroupSnapshot is auto (default: one where the cluster serves
	// groupsnapshot.storage.k8s.io/v1 and has a class for the volumes' driver, freeze-all
	// ordering elsewhere), required (fail where the cluster cannot) or disabled.
	VolumeGroupSnapshot string `yaml:"volumeGroupSnapshot" json:"volumeGroupSnapshot"`
	// GroupSnapshotClassName is the VolumeGroupSnapshotClass; empty picks the class of the
	// volumes' CSI driver (reading PVs and classes needs the shipped ClusterRole).
	GroupSnapshotClassName string `yaml:"groupSnapshotClassName" json:"groupSnapshotClassName,omitempty"`
	// Namespace of the members' PVCs (default: theirs, snapshot.csi.namespace).
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// Selector are the labels every member PVC carries, which the VolumeGroupSnapshot selects
	// by (default firedrill.io/group: <group name>). firedrill does not label PVCs.
	Selector map[string]string `yaml:"selector" json:"selector,omitempty"`
}

// Group returns the group called name.
func (c *Config) Group(name string) (*Group, bool) {
	for i := range c.Groups {
		if c.Groups[i].Name == name {
			return &c.Groups[i], true
		}
	}
	return nil, false
}

// validateGroups checks groups: names, members, maxFreeze and their VolumeGroupSnapshot.
func validateGroups(c *Config, add addFunc) {
	names := map[string]int{}
	for i, g := range c.Groups {
		p := fmt.Sprintf("groups[%d]", i)
		switch {
		case g.Name == "":
			add(p+".name", "required: a short name such as shop")
		case !nameRe.MatchString(g.Name):
			add(p+".name", "%q is not a valid name: lowercase letters, digits and '-', at most 63", g.Name)
		default:
			if j, dup := names[g.Name]; dup {
				add(p+".name", "duplicate group name %q (also groups[%d])", g.Name, j)
			}
			names[g.Name] = i
		}
		if len(g.Targets) < 2 {
			add(p+".targets", "a group needs at least two targets")
		}
		seen := map[string]bool{}
		for j, name := range g.Targets {
			if _, ok := c.Target(name); !ok {
				add(fmt.Sprintf("%s.targets[%d]", p, j), "no target named %q", name)
			}
			if seen[name] {
				add(fmt.Sprintf("%s.targets[%d]", p, j), "target %q is listed twice", name)
			}
			seen[name] = true
		}
		if g.MaxFreeze.Duration < time.Second || g.MaxFreeze.Duration > time.Hour {
			add(p+".maxFreeze", "must be between 1s and 1h, got %s", g.MaxFreeze.Duration)
		}
		validateGroupCSI(c, g, p+".csi", add)
	}
}

func validateGroupCSI(c *Config, g Group, p string, add addFunc) {
	gc := g.CSI
	switch gc.VolumeGroupSnapshot {
	case GroupSnapshotAuto, GroupSnapshotRequired, GroupSnapshotDisabled:
	default:
		add(p+".volumeGroupSnapshot", "must be auto, required or disabled, got %q", gc.VolumeGroupSnapshot)
	}
	if gc.Namespace != "" && !nameRe.MatchString(gc.Namespace) {
		add(p+".namespace", "%q is not a valid namespace name", gc.Namespace)
	}
	if gc.GroupSnapshotClassName != "" && len(validation.IsDNS1123Subdomain(gc.GroupSnapshotClassName)) > 0 {
		add(p+".groupSnapshotClassName", "%q is not a valid object name", gc.GroupSnapshotClassName)
	}
	for _, k := range slices.Sorted(maps.Keys(gc.Selector)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			add(p+".selector", "label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(gc.Selector[k]); len(errs) > 0 {
			add(p+".selector", "label %s value %q: %s", k, gc.Selector[k], strings.Join(errs, "; "))
		}
	}
	if gc.VolumeGroupSnapshot != GroupSnapshotRequired {
		return
	}
	// Required: every member must be on csi in the group's namespace, or no group snapshot
	// can ever be taken.
	for j, name := range g.Targets {
		t, ok := c.Target(name)
		if !ok {
			continue
		}
		switch {
		case t.Snapshot.Driver != "csi":
			add(fmt.Sprintf("%s.volumeGroupSnapshot", p), "required, but member %s (targets[%d]) uses driver %s: a VolumeGroupSnapshot needs every member on driver csi", name, j, t.Snapshot.Driver)
		case gc.Namespace != "" && t.Snapshot.CSI.Namespace != gc.Namespace:
			add(fmt.Sprintf("%s.volumeGroupSnapshot", p), "required, but member %s's PVCs are in namespace %s, not %s", name, t.Snapshot.CSI.Namespace, gc.Namespace)
		}
	}
}
