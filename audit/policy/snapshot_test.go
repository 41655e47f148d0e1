package policy

import (
	"strings"
	"testing"
	"time"
)

// testDSNs are well-formed DSNs of each engine (validation parses them with the engine's driver).
var testDSNs = map[string]string{
	"postgres": "host=/run/pg", "mariadb": "root@tcp(127.0.0.1:3306)/", "mysql": "root@tcp(127.0.0.1:3306)/",
	"redis": "redis://127.0.0.1:6379", "mongodb": "mongodb://127.0.0.1:27017",
}

func TestSnapshotExtValidation(t *testing.T) {
	base := `targets:
  - name: shop
    engine: %ENGINE%
    connection: {dsn: "%DSN%"}
    snapshot:
%SNAP%
  - name: cache
    engine: redis
    connection: {dsn: "redis://127.0.0.1:6379"}
    snapshot:
      local: {dataDir: /var/lib/redis, repository: /backups/cache}
`
	doc := func(engine, snap string) string {
		return strings.NewReplacer("%ENGINE%", engine, "%DSN%", testDSNs[engine], "%SNAP%", snap).Replace(base)
	}
	csiOK := "      driver: csi\n      csi: {namespace: db, pvc: data, className: fast}\n"
	cases := []struct {
		name, yaml, wantKey, wantMsg string
	}{
		{"mariadb on csi", doc("mariadb", csiOK), "", ""},
		// A local MariaDB snapshot is mariadb-backup --backup (restore/engine/mariadb).
		{"mariadb online on local", doc("mariadb", "      local: {dataDir: /d, repository: /r}\n"), "", ""},
		{"mariadb crash-consistent on local is refused", doc("mariadb", "      mode: crash-consistent\n      local: {dataDir: /d, repository: /r}\n"), "targets[0].snapshot.mode", "crash-consistent"},
		{"csi needs namespace, pvc, class", doc("postgres", "      driver: csi\n"), "targets[0].snapshot.csi.namespace", "required with driver csi"},
		{"crash-consistent with a separate WAL volume", doc("postgres", "      driver: csi\n      mode: crash-consistent\n      csi: {namespace: db, pvc: data, walPVC: wal, className: fast}\n"), "targets[0].snapshot.mode", "atomically"},
		{"redis has no crash-consistent mode", doc("redis", "      driver: csi\n      mode: crash-consistent\n      csi: {namespace: db, pvc: data, className: fast}\n"), "targets[0].snapshot.mode", "does not support"},
		{"maxFreeze bounds", doc("mariadb", csiOK+"      maxFreeze: 2h\n"), "targets[0].snapshot.maxFreeze", "between 1s and 1h"},
		{"group of unknown target", doc("mariadb", csiOK) + "groups:\n  - name: g\n    targets: [shop, nope]\n", "groups[0].targets[1]", `no target named "nope"`},
		{"group of one", doc("mariadb", csiOK) + "groups:\n  - name: g\n    targets: [shop]\n", "groups[0].targets", "at least two"},
		{"negative keepLast", doc("mariadb", csiOK) + "    retention: {keepLast: -1}\n", "targets[1].retention.keepLast", "zero"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("/etc/firedrill.yaml", []byte(tc.yaml))
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg != nil && cfg.Targets[0].Snapshot.MaxFreeze.Duration != DefaultMaxFreeze {
					t.Errorf("maxFreeze default %s", cfg.Targets[0].Snapshot.MaxFreeze.Duration)
				}
				return
			}
			es, ok := err.(Errors)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			for _, e := range es {
				if e.Key == tc.wantKey && strings.Contains(e.Msg, tc.wantMsg) {
					return
				}
			}
			t.Errorf("no error at %s containing %q in:\n%v", tc.wantKey, tc.wantMsg, err)
		})
	}
}

func TestGroupMaxFreezeDefaultsToSmallestMember(t *testing.T) {
	y := `targets:
  - name: a
    engine: mariadb
    connection: {dsn: "root@tcp(127.0.0.1:3306)/"}
    snapshot: {driver: csi, maxFreeze: 20s, csi: {namespace: db, pvc: a, className: c}}
  - name: b
    engine: redis
    connection: {dsn: "redis://127.0.0.1:6379"}
    snapshot: {maxFreeze: 45s, local: {dataDir: /d, repository: /r}}
groups:
  - name: shop
    targets: [a, b]
`
	cfg, err := Parse("/etc/firedrill.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := cfg.Group("shop")
	if !ok || g.MaxFreeze.Duration != 20*time.Second {
		t.Errorf("group %+v", g)
	}
}

func TestGroupCSI(t *testing.T) {
	targets := `targets:
  - name: a
    engine: mariadb
    connection: {dsn: "root@tcp(127.0.0.1:3306)/"}
    snapshot: {driver: csi, csi: {namespace: db, pvc: a, className: c}}
  - name: b
    engine: postgres
    connection: {dsn: "host=/run/pg"}
    snapshot: {driver: csi, csi: {namespace: db, pvc: b, walPVC: b-wal, className: c}}
  - name: r
    engine: redis
    connection: {dsn: "redis://127.0.0.1:6379"}
    snapshot: {local: {dataDir: /d, repository: /r}}
groups:
  - name: shop
`
	cases := []struct {
		name, group, wantKey, wantMsg string
	}{
		{"defaults", "    targets: [a, b]\n", "", ""},
		{"all keys", "    targets: [a, b]\n    csi: {volumeGroupSnapshot: required, groupSnapshotClassName: group-fast, namespace: db, selector: {app.kubernetes.io/part-of: shop}}\n", "", ""},
		{"unknown mode", "    targets: [a, b]\n    csi: {volumeGroupSnapshot: always}\n", "groups[0].csi.volumeGroupSnapshot", "auto, required or disabled"},
		{"required with a local member", "    targets: [a, r]\n    csi: {volumeGroupSnapshot: required}\n", "groups[0].csi.volumeGroupSnapshot", "member r (targets[1]) uses driver local"},
		{"required in another namespace", "    targets: [a, b]\n    csi: {volumeGroupSnapshot: required, namespace: other}\n", "groups[0].csi.volumeGroupSnapshot", "not other"},
		{"bad selector", "    targets: [a, b]\n    csi: {selector: {\"bad key!\": x}}\n", "groups[0].csi.selector", "label key"},
		{"bad selector value", "    targets: [a, b]\n    csi: {selector: {app: \"-x-\"}}\n", "groups[0].csi.selector", "value"},
		{"bad class name", "    targets: [a, b]\n    csi: {groupSnapshotClassName: Fast_Class}\n", "groups[0].csi.groupSnapshotClassName", "not a valid object name"},
		{"unknown key is an error", "    targets: [a, b]\n    csi: {className: x}\n", "", "className"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("/etc/firedrill.yaml", []byte(targets+tc.group))
			switch {
			case tc.wantKey == "" && tc.wantMsg == "":
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				g := cfg.Groups[0].CSI
				if tc.name == "defaults" && (g.VolumeGroupSnapshot != GroupSnapshotAuto || len(g.Selector) != 1 || g.Selector[DefaultGroupSelectorKey] != "shop" || g.Namespace != "" || g.GroupSnapshotClassName != "") {
					t.Errorf("defaults %+v", g)
				}
				if tc.name == "all keys" && (g.VolumeGroupSnapshot != GroupSnapshotRequired || g.GroupSnapshotClassName != "group-fast" || g.Selector["app.kubernetes.io/part-of"] != "shop" || len(g.Selector) != 1) {
					t.Errorf("parsed %+v", g)
				}
			case tc.wantKey == "":
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantMsg)
				}
			default:
				es, ok := err.(Errors)
				if !ok {
					t.Fatalf("err = %v", err)
				}
				for _, e := range es {
					if e.Key == tc.wantKey && strings.Contains(e.Msg, tc.wantMsg) {
						return
					}
				}
				t.Errorf("no error at %s containing %q in:\n%v", tc.wantKey, tc.wantMsg, err)
			}
		})
	}
}
