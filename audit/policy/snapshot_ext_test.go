package policy

import (
	"strings"
	"testing"
	"time"
)

func TestSnapshotExtValidation(t *testing.T) {
	base := `targets:
  - name: shop
    engine: %ENGINE%
    connection: {dsn: "x"}
    snapshot:
%SNAP%
  - name: cache
    engine: redis
    connection: {dsn: "redis://127.0.0.1:6379"}
    snapshot:
      local: {dataDir: /var/lib/redis, repository: /backups/cache}
`
	doc := func(engine, snap string) string {
		return strings.NewReplacer("%ENGINE%", engine, "%SNAP%", snap).Replace(base)
	}
	csiOK := "      driver: csi\n      csi: {namespace: db, pvc: data, className: fast}\n"
	cases := []struct {
		name, yaml, wantKey, wantMsg string
	}{
		{"mariadb on csi", doc("mariadb", csiOK), "", ""},
		{"mariadb on local is refused with why and what instead", doc("mariadb", "      local: {dataDir: /d, repository: /r}\n"), "targets[0].snapshot.driver", "InnoDB keeps writing"},
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
    connection: {dsn: x}
    snapshot: {driver: csi, maxFreeze: 20s, csi: {namespace: db, pvc: a, className: c}}
  - name: b
    engine: redis
    connection: {dsn: x}
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
