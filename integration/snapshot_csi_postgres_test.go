package integration

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// An online PostgreSQL snapshot with driver csi against the real kube-apiserver, as the
// ServiceAccount bound to the shipped Role (the test plays the CSI snapshot controller): the
// backup_label and tablespace_map annotations decode to exactly what pg_backup_stop returned
// (the backup history file PostgreSQL wrote holds the same START lines plus the STOP lines, and
// tablespace_map names the real tablespace), the LSNs and the frozen time are recorded, and the
// database is out of backup mode afterwards.
func TestPostgresCSIOnlineSnapshot(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true})
	ctx := t.Context()

	// A tablespace, so that pg_backup_stop returns a tablespace_map.
	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		t.Fatal(err)
	}
	tsDir := filepath.Join(harness.TempDir(t), "ts1")
	if err := os.Mkdir(tsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := runAs.Chown(tsDir); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE TABLESPACE ts1 LOCATION '" + tsDir + "'",
		"CREATE TABLE orders (id bigserial PRIMARY KEY, note text) TABLESPACE ts1",
		"INSERT INTO orders (note) SELECT 'before' FROM generate_series(1, 1000)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var tsOID uint32
	var tsLocation string
	if err := conn.QueryRow(ctx, "SELECT oid, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'").Scan(&tsOID, &tsLocation); err != nil {
		t.Fatal(err)
	}

	sa, err := snapshotclient.NewForConfig(k.ClientAs(t, "pg", "firedrill", shippedRole(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctrl := &fakeCSIController{client: k.Snapshots, namespace: "pg", cutDelay: 300 * time.Millisecond, readyDelay: 100 * time.Millisecond}
	startController(t, ctrl)

	meta, err := take.Take(ctx, take.Options{Target: "orders", Engine: "postgres", Mode: "online", DSN: pg.DSN("postgres"), MaxFreeze: 30 * time.Second, Fast: true,
		CSI:     &csi.Driver{API: sa.SnapshotV1(), Namespace: "pg", ClassName: "fast", ReadyTimeout: 10 * time.Second},
		Volumes: []csi.PVC{{Role: csi.RoleData, Name: "pgdata"}, {Role: csi.RoleWAL, Name: "pgwal"}}})
	if err != nil {
		t.Fatalf("online csi snapshot as the ServiceAccount with the shipped Role: %v", err)
	}

	// What pg_backup_stop returned is in the metadata; the annotations must decode to it on
	// every volume.
	label, spcmap := meta.EngineFiles[postgres.BackupLabelFile], meta.EngineFiles[postgres.TablespaceMapFile]
	if len(label) == 0 || len(spcmap) == 0 {
		t.Fatalf("metadata holds backup_label %q and tablespace_map %q", label, spcmap)
	}
	var vss []*snapshotv1.VolumeSnapshot
	for _, v := range meta.Volumes {
		vs, err := k.Snapshots.SnapshotV1().VolumeSnapshots("pg").Get(ctx, v.VolumeSnapshot, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vss = append(vss, vs)
		for ann, want := range map[string][]byte{csi.AnnBackupLabel: label, csi.AnnTablespaceMap: spcmap} {
			got, err := base64.StdEncoding.DecodeString(vs.Annotations[ann])
			if err != nil || string(got) != string(want) {
				t.Errorf("%s: annotation %s decodes to %q (%v), want %q", vs.Name, ann, got, err, want)
			}
		}
		for ann, want := range map[string]string{csi.AnnStartLSN: meta.StartLSN, csi.AnnStopLSN: meta.StopLSN, csi.AnnTimeline: "1"} {
			if vs.Annotations[ann] != want || want == "" {
				t.Errorf("%s: annotation %s = %q, want %q", vs.Name, ann, vs.Annotations[ann], want)
			}
		}
		frozen, err := strconv.ParseFloat(vs.Annotations[csi.AnnFrozenSeconds], 64)
		if err != nil || frozen <= 0 || fmt.Sprintf("%.3f", meta.FrozenSeconds) != vs.Annotations[csi.AnnFrozenSeconds] {
			t.Errorf("%s: frozen-seconds %q, metadata %.6f", vs.Name, vs.Annotations[csi.AnnFrozenSeconds], meta.FrozenSeconds)
		}
		frozenAt, err1 := time.Parse(time.RFC3339Nano, vs.Annotations[csi.AnnFrozenAt])
		thawedAt, err2 := time.Parse(time.RFC3339Nano, vs.Annotations[csi.AnnThawedAt])
		// The data volume is cut while in backup mode; the WAL volume after pg_backup_stop, so
		// that it holds the WAL up to the stop LSN. CreationTime has whole seconds only.
		cut := vs.Status.CreationTime.Time
		var cutOK bool
		if strings.HasSuffix(vs.Name, "-"+csi.RoleWAL) {
			cutOK = !cut.Before(thawedAt.Truncate(time.Second))
		} else {
			cutOK = !cut.Before(frozenAt.Truncate(time.Second)) && !thawedAt.Before(cut.Truncate(time.Second))
		}
		if err1 != nil || err2 != nil || !thawedAt.After(frozenAt) || !cutOK {
			t.Errorf("%s: frozen at %q, thawed at %q, cut at %s", vs.Name, vs.Annotations[csi.AnnFrozenAt], vs.Annotations[csi.AnnThawedAt], vs.Status.CreationTime)
		}
	}

	// tablespace_map is "<oid> <location>" of the tablespace.
	if want := fmt.Sprintf("%d %s\n", tsOID, tsLocation); string(spcmap) != want {
		t.Errorf("tablespace_map %q, want %q", spcmap, want)
	}

	// The backup history file pg_backup_stop wrote (pg_wal/*.backup, archived too) is the
	// backup_label's lines with the STOP lines added after the first.
	history := findBackupHistory(t, pg, meta.StartLSN)
	var rest []string
	for _, line := range strings.Split(strings.TrimSuffix(history, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "STOP WAL LOCATION: "):
			if lsn := strings.Fields(line)[3]; lsn != meta.StopLSN {
				t.Errorf("history file stop LSN %s, recorded %s", lsn, meta.StopLSN)
			}
		case strings.HasPrefix(line, "STOP TIME: "), strings.HasPrefix(line, "STOP TIMELINE: "):
		default:
			rest = append(rest, line)
		}
	}
	if got := strings.Join(rest, "\n") + "\n"; got != string(label) {
		t.Errorf("backup_label differs from the backup history file without its STOP lines:\nbackup_label:\n%s\nhistory file:\n%s", label, history)
	}
	if !strings.HasPrefix(string(label), "START WAL LOCATION: "+meta.StartLSN+" ") {
		t.Errorf("backup_label does not start at the recorded start LSN %s:\n%s", meta.StartLSN, label)
	}

	// Out of backup mode: the snapshot's session is gone (a non-exclusive backup lives and dies
	// with its session), and a new backup starts and stops.
	var sessions int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'firedrill-snapshot'").Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 0 {
		t.Errorf("%d firedrill-snapshot sessions still open", sessions)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_backup_start('after firedrill', true)"); err != nil {
		t.Fatalf("a new pg_backup_start after the snapshot: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM pg_backup_stop(false)"); err != nil {
		t.Fatalf("pg_backup_stop: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO orders (note) VALUES ('after')"); err != nil {
		t.Fatal(err)
	}
	t.Logf("online csi snapshot: %d volumes, LSN %s..%s, in backup mode %.3fs, cut after %s", len(vss), meta.StartLSN, meta.StopLSN, meta.FrozenSeconds, ctrl.cutDelay)
}

// findBackupHistory returns the backup history file of the backup that started at startLSN,
// from pg_wal or the WAL archive.
func findBackupHistory(t *testing.T, pg *harness.Postgres, startLSN string) string {
	t.Helper()
	var paths []string
	for _, dir := range []string{filepath.Join(pg.DataDir, "pg_wal"), pg.ArchiveDir} {
		p, _ := filepath.Glob(filepath.Join(dir, "*.backup"))
		paths = append(paths, p...)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(b), "START WAL LOCATION: "+startLSN+" ") && strings.Contains(string(b), "\nLABEL: firedrill orders\n") {
			return string(b)
		}
	}
	t.Fatalf("no backup history file for start LSN %s among %v", startLSN, paths)
	return ""
}
