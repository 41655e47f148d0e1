package docker

import (
	"slices"
	"testing"
)

func TestContainerConfig(t *testing.T) {
	s := spec{Image: "local/postgres:15", UID: 105, GID: 110, DrillID: "abcd1234", Target: "orders",
		ScratchDir: "/var/tmp/fd/orders-abcd1234", Mounts: []string{"/var/tmp/fd/orders-abcd1234", "/tmp/fd-sock-1"},
		Entrypoint: []string{"postgres"}, Cmd: []string{"-D", "/var/tmp/fd/orders-abcd1234/clone/data"}, Role: "server",
		MemoryBytes: 512 << 20, NanoCPUs: 1e9}
	cfg, hc := containerConfig(s)
	tests := []struct {
		name string
		ok   bool
	}{
		{"runs as the image's database uid", cfg.User == "105:110"},
		{"label managed-by firedrill", cfg.Labels[LabelManagedBy] == "firedrill"},
		{"label drill id", cfg.Labels[LabelDrillID] == "abcd1234"},
		{"label target", cfg.Labels[LabelTarget] == "orders"},
		{"label scratch dir (the leftover sweep's key)", cfg.Labels[LabelScratchDir] == s.ScratchDir},
		{"no network", hc.NetworkMode == "none" && hc.NetworkMode.IsNone()},
		{"every capability dropped, none added", slices.Equal(hc.CapDrop, []string{"ALL"}) && len(hc.CapAdd) == 0},
		{"no new privileges", slices.Contains(hc.SecurityOpt, "no-new-privileges")},
		{"not privileged", !hc.Privileged},
		{"read-only root filesystem", hc.ReadonlyRootfs},
		{"tmpfs /tmp and /run", hc.Tmpfs["/tmp"] != "" && hc.Tmpfs["/run"] != ""},
		{"memory limit", hc.Memory == 512<<20},
		{"cpu limit", hc.NanoCPUs == 1e9},
		{"pids limit", hc.PidsLimit != nil && *hc.PidsLimit > 0},
		{"no port published", len(hc.PortBindings) == 0 && len(cfg.ExposedPorts) == 0},
		{"entrypoint is the server itself (no root entrypoint script)", slices.Equal(cfg.Entrypoint, []string{"postgres"})},
		{"two bind mounts", len(hc.Mounts) == 2},
		{"no host namespaces", hc.PidMode == "" && hc.IpcMode == "" && hc.UTSMode == ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("config %+v\nhost config %+v", cfg, hc)
			}
		})
	}
	for _, m := range hc.Mounts {
		t.Run("mount "+m.Source, func(t *testing.T) {
			if m.Type != "bind" || m.Source != m.Target || m.ReadOnly {
				t.Errorf("mount %+v: want a read-write bind at the same path", m)
			}
		})
	}
	t.Run("no mounts when none asked", func(t *testing.T) {
		_, hc := containerConfig(spec{Image: "x"})
		if len(hc.Mounts) != 0 || len(hc.Binds) != 0 {
			t.Errorf("mounts %v binds %v", hc.Mounts, hc.Binds)
		}
	})
}

func TestParseID(t *testing.T) {
	tests := []struct {
		out      string
		uid, gid int
		err      bool
	}{
		{"uid=105(postgres) gid=110(postgres) groups=110(postgres),109(ssl-cert)\n", 105, 110, false},
		{"uid=999(postgres) gid=999(postgres) groups=999(postgres)", 999, 999, false},
		{"id: 'postgres': no such user", 0, 0, true},
		{"uid=0(root) gid=0(root)", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			uid, gid, err := parseID(tt.out)
			if (err != nil) != tt.err || uid != tt.uid || gid != tt.gid {
				t.Errorf("parseID = %d, %d, %v", uid, gid, err)
			}
		})
	}
}

func TestImage(t *testing.T) {
	if got := New(nil, runtimeOpts("")).Image("16"); got != "postgres:16" {
		t.Errorf("default image = %s", got)
	}
	if got := New(nil, runtimeOpts("local/postgres:15")).Image("16"); got != "local/postgres:15" {
		t.Errorf("configured image = %s", got)
	}
}
