package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// rootDB connects as root over the server's socket: a session that is not the freezer's
// (which uses the TCP account), so tests can watch, write and KILL from outside.
func rootDB(t *testing.T, m *harness.MariaDB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", "root@unix("+m.Socket+")/"+m.Database+"?parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(t.Context(), "CREATE TABLE IF NOT EXISTS orders (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	return db
}

// writeWithin inserts a row and fails unless it completes within d: the database is not frozen.
func writeWithin(ctx context.Context, db *sql.DB, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := db.ExecContext(wctx, "INSERT INTO orders (note) VALUES ('after')")
	return err
}

// freezerSessions counts the TCP account's sessions: the freezer's, if one leaked.
func freezerSessions(ctx context.Context, db *sql.DB, user string) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?", user).Scan(&n)
	return n, err
}

func mariadbOptions(m *harness.MariaDB, cs *fake.Clientset) take.Options {
	return take.Options{Target: "shop", Engine: "mariadb", Mode: "online", DSN: m.DSN, MaxFreeze: 10 * time.Second,
		CSI:     &csi.Driver{API: cs.SnapshotV1(), Namespace: "db", ClassName: "fast", ReadyTimeout: 5 * time.Second, Poll: 2 * time.Millisecond, MaxPoll: 20 * time.Millisecond},
		Volumes: []csi.PVC{{Role: csi.RoleData, Name: "mariadb-data"}}}
}

// While the freeze holds, an INSERT from another session blocks; it completes after the thaw.
// The binlog position recorded equals SHOW MASTER STATUS read from outside under the lock.
func TestMariaDBFreezeBlocksWritesAndRecordsBinlog(t *testing.T) {
	harness.Integration(t)
	m := harness.StartMariaDB(t)
	ctx := t.Context()
	root := rootDB(t, m)
	for i := range 50 {
		if _, err := root.ExecContext(ctx, "INSERT INTO orders (note) VALUES (?)", "before-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	cs := fake.NewSimpleClientset()
	var insertDone atomic.Int64
	var underLock struct {
		file string
		pos  uint64
		gtid string
	}
	insertErr := make(chan error, 1)
	ctrl := &fakeCSIController{client: cs, namespace: "db", cutDelay: 400 * time.Millisecond, readyDelay: 50 * time.Millisecond,
		onCut: func(*snapshotv1.VolumeSnapshot) {
			// Still frozen: the INSERT started at freeze time must not have completed.
			if insertDone.Load() != 0 {
				t.Error("an INSERT completed while FLUSH TABLES WITH READ LOCK was held")
			}
			f, p, _, err := mariadb.ShowMasterStatus(ctx, root)
			if err != nil {
				t.Error(err)
			}
			underLock.file, underLock.pos = f, p
			_ = root.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&underLock.gtid)
		}}
	startController(t, ctrl)
	// The INSERT starts as soon as the VolumeSnapshot exists: the lock is held by then.
	cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
		go func() {
			_, err := root.ExecContext(ctx, "INSERT INTO orders (note) VALUES ('during')")
			insertDone.Store(time.Now().UnixNano())
			insertErr <- err
		}()
		return false, nil, nil
	})

	meta, err := take.Take(ctx, mariadbOptions(m, cs))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-insertErr; err != nil {
		t.Fatalf("the blocked INSERT failed: %v", err)
	}
	cut := ctrl.cutTime(meta.Volumes[0].VolumeSnapshot)
	done := time.Unix(0, insertDone.Load())
	if done.Before(cut) {
		t.Errorf("INSERT completed at %s, before the cut at %s", done.Format(time.StampMicro), cut.Format(time.StampMicro))
	}
	t.Logf("frozen %.3fs; INSERT completed %s after the cut", meta.FrozenSeconds, done.Sub(cut).Round(time.Millisecond))
	if meta.FrozenSeconds < 0.35 || meta.FrozenSeconds > 5 {
		t.Errorf("frozen %.3fs, want about the 0.4 s the cut took", meta.FrozenSeconds)
	}
	a := meta.Attributes
	if a[mariadb.AttrBinlogFile] != underLock.file || a[mariadb.AttrBinlogPosition] != strconv.FormatUint(underLock.pos, 10) {
		t.Errorf("recorded binlog %s:%s, SHOW MASTER STATUS under the lock said %s:%d", a[mariadb.AttrBinlogFile], a[mariadb.AttrBinlogPosition], underLock.file, underLock.pos)
	}
	if a[mariadb.AttrGTIDBinlogPos] != underLock.gtid || a[mariadb.AttrBinlogExact] != "true" {
		t.Errorf("gtid %q (exact %s), under the lock %q", a[mariadb.AttrGTIDBinlogPos], a[mariadb.AttrBinlogExact], underLock.gtid)
	}
	vs, err := cs.SnapshotV1().VolumeSnapshots("db").Get(ctx, meta.Volumes[0].VolumeSnapshot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vs.Annotations[csi.AnnBinlogFile] != underLock.file || vs.Annotations[csi.AnnBinlogPosition] != strconv.FormatUint(underLock.pos, 10) {
		t.Errorf("annotations %v", vs.Annotations)
	}
	if vs.Labels[csi.LabelEngine] != "mariadb" || vs.Labels[csi.LabelEngineVersion] == "" {
		t.Errorf("labels %v", vs.Labels)
	}
	// After the snapshot, the binlog moved on past the recorded position.
	f, p, _, _ := mariadb.ShowMasterStatus(ctx, root)
	t.Logf("binlog under the lock %s:%d (gtid %s); now %s:%d", underLock.file, underLock.pos, underLock.gtid, f, p)
}

// The crash-consistent mode takes no lock: writes go on during the snapshot.
func TestMariaDBCrashConsistentTakesNoLock(t *testing.T) {
	harness.Integration(t)
	m := harness.StartMariaDB(t)
	ctx := t.Context()
	root := rootDB(t, m)
	cs := fake.NewSimpleClientset()
	ctrl := &fakeCSIController{client: cs, namespace: "db", cutDelay: 300 * time.Millisecond, readyDelay: 10 * time.Millisecond,
		onCut: func(*snapshotv1.VolumeSnapshot) {
			if err := writeWithin(ctx, root, time.Second); err != nil {
				t.Errorf("a write during a crash-consistent snapshot: %v", err)
			}
		}}
	startController(t, ctrl)
	o := mariadbOptions(m, cs)
	o.Mode = "crash-consistent"
	meta, err := take.Take(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Attributes[mariadb.AttrBinlogExact] != "false" || meta.Attributes[mariadb.AttrLockMode] != "crash-consistent" {
		t.Errorf("attributes %v", meta.Attributes)
	}
	// With a MyISAM table, crash-consistent mode refuses.
	if _, err := root.ExecContext(ctx, "CREATE TABLE legacy (id INT) ENGINE=MyISAM"); err != nil {
		t.Fatal(err)
	}
	if _, err := take.Take(ctx, o); !errors.Is(err, mariadb.ErrNotInnoDBOnly) {
		t.Errorf("with a MyISAM table: %v, want ErrNotInnoDBOnly", err)
	}
}

// Injected faults while MariaDB is frozen: API errors, a snapshot that never becomes ready, a
// status.error, a context cancelled mid-way, the lock's connection killed, the freeze bound
// reached. After each, a write from another session completes within 1 s, no VolumeSnapshot
// remains, and no freezer session is left on the server.
func TestMariaDBSnapshotFaults(t *testing.T) {
	harness.Integration(t)
	m := harness.StartMariaDB(t)
	ctx := t.Context()
	root := rootDB(t, m)
	kill := func() {
		rows, err := root.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ?", m.User)
		if err != nil {
			t.Error(err)
			return
		}
		var ids []int64
		for rows.Next() {
			var id int64
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			_, _ = root.ExecContext(ctx, fmt.Sprintf("KILL %d", id))
		}
	}
	boom := errors.New("the server is currently unable to handle the request")
	type fault struct {
		name  string
		setup func(cs *fake.Clientset, ctrl *fakeCSIController, o *take.Options, cancel context.CancelFunc)
		want  error
	}
	faults := []fault{
		{"create refused", func(cs *fake.Clientset, _ *fakeCSIController, _ *take.Options, _ context.CancelFunc) {
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}, boom},
		{"get fails while waiting for the cut", func(cs *fake.Clientset, ctrl *fakeCSIController, _ *take.Options, _ context.CancelFunc) {
			ctrl.cutDelay = time.Hour
			cs.PrependReactor("get", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}, boom},
		{"status.error", func(_ *fake.Clientset, ctrl *fakeCSIController, _ *take.Options, _ context.CancelFunc) {
			ctrl.errMsg = "failed to take snapshot of the volume: rpc error: code = Internal desc = disk quota exceeded"
		}, csi.ErrSnapshotFailed},
		{"never ready", func(_ *fake.Clientset, ctrl *fakeCSIController, o *take.Options, _ context.CancelFunc) {
			ctrl.never = true
			o.CSI.ReadyTimeout = 30 * time.Millisecond
		}, csi.ErrNotReady},
		{"cancelled while frozen", func(cs *fake.Clientset, ctrl *fakeCSIController, _ *take.Options, cancel context.CancelFunc) {
			ctrl.cutDelay = time.Hour
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				go func() { time.Sleep(5 * time.Millisecond); cancel() }()
				return false, nil, nil
			})
		}, context.Canceled},
		{"lock connection killed", func(cs *fake.Clientset, _ *fakeCSIController, _ *take.Options, _ context.CancelFunc) {
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				kill()
				return false, nil, nil
			})
		}, mariadb.ErrLockLost},
		{"freeze bound reached", func(_ *fake.Clientset, ctrl *fakeCSIController, o *take.Options, _ context.CancelFunc) {
			ctrl.cutDelay = time.Hour
			o.MaxFreeze = 40 * time.Millisecond
		}, take.ErrFreezeTimeout},
	}
	const perFault = 15
	runs, leaks := 0, 0
	var maxRelease time.Duration
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			for range perFault {
				cs := fake.NewSimpleClientset()
				ctrl := &fakeCSIController{client: cs, namespace: "db", cutDelay: 5 * time.Millisecond, readyDelay: 5 * time.Millisecond}
				o := mariadbOptions(m, cs)
				rctx, cancel := context.WithCancel(ctx)
				f.setup(cs, ctrl, &o, cancel)
				cctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); ctrl.run(cctx, t) }()
				_, err := take.Take(rctx, o)
				returned := time.Now()
				stop()
				<-done
				cancel()
				runs++
				if !errors.Is(err, f.want) {
					t.Fatalf("err = %v, want %v", err, f.want)
				}
				if werr := writeWithin(ctx, root, time.Second); werr != nil {
					leaks++
					t.Fatalf("after %q the database does not accept writes within 1 s: %v", f.name, werr)
				}
				maxRelease = max(maxRelease, time.Since(returned))
				left, _ := cs.Tracker().List(snapshotv1.SchemeGroupVersion.WithResource("volumesnapshots"), snapshotv1.SchemeGroupVersion.WithKind("VolumeSnapshot"), "db")
				if n := len(left.(*snapshotv1.VolumeSnapshotList).Items); n != 0 {
					t.Errorf("%d partial VolumeSnapshots left", n)
				}
				// The freezer closes its pool; the server may take a moment to reap the session.
				deadline := time.Now().Add(time.Second)
				for {
					n, err := freezerSessions(ctx, root, m.User)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						break
					}
					if time.Now().After(deadline) {
						leaks++
						t.Fatalf("%d freezer sessions still open after %q", n, f.name)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	t.Logf("%d injected-fault runs, %d leaked locks or sessions; slowest write after a failure %s", runs, leaks, maxRelease.Round(time.Millisecond))
	if runs < 100 {
		t.Errorf("only %d fault runs", runs)
	}
}
