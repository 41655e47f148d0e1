package docker

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Labels on every container firedrill starts.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedByValue  = "firedrill"
	LabelDrillID    = "firedrill.io/drill-id"
	LabelTarget     = "firedrill.io/target"
	LabelScratchDir = "firedrill.io/scratch-dir"
	LabelRole       = "firedrill.io/role"
)

// spec is what a container of a drill is made of.
type spec struct {
	Image    string
	UID, GID int
	DrillID  string
	Target   string
	// Mounts are host directories bind-mounted read-write at the same path inside (the
	// scratch directory, a socket directory made elsewhere for a short path): paths the
	// checks name on the host are the same inside.
	Mounts []string
	// ScratchDir is the drill's scratch directory (a label: the leftover sweep's key).
	ScratchDir  string
	Entrypoint  []string
	Cmd         []string
	Role        string // "server" or "tool"
	MemoryBytes int64
	NanoCPUs    int64
}

// containerConfig builds the container: the image's database uid (so the server needs no
// capability and no entrypoint runs as root), no network (firedrill talks to it over a unix
// socket in a mounted directory), every capability dropped, no new privileges, a read-only
// root filesystem with tmpfs /tmp and /run, and the configured limits.
func containerConfig(s spec) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:      s.Image,
		User:       fmt.Sprintf("%d:%d", s.UID, s.GID),
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Env:        []string{"LC_ALL=C", "TZ=UTC"},
		Labels: map[string]string{
			LabelManagedBy: ManagedByValue, LabelDrillID: s.DrillID, LabelTarget: s.Target,
			LabelScratchDir: s.ScratchDir, LabelRole: s.Role,
		},
		WorkingDir: "/tmp",
	}
	hc := &container.HostConfig{
		NetworkMode:    "none",
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Tmpfs: map[string]string{
			"/tmp": "rw,nosuid,nodev,size=64m",
			"/run": "rw,nosuid,nodev,size=16m",
		},
		Resources: container.Resources{Memory: s.MemoryBytes, NanoCPUs: s.NanoCPUs},
	}
	pids := int64(256)
	hc.PidsLimit = &pids
	for _, m := range s.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m, Target: m})
	}
	return cfg, hc
}
