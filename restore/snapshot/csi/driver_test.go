package csi

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// autoClock is a fake clock that moves forward by whatever the driver waits for, the moment it
// waits: the driver never sleeps in real time, and every wait shows on the clock.
type autoClock struct{ *testingclock.FakeClock }

func newClock() autoClock {
	return autoClock{testingclock.NewFakeClock(time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC))}
}

func (c autoClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.Step(d) // fires t: its channel holds one value
	return t
}

// fakeFreezer records the order of calls and whether it is frozen.
type fakeFreezer struct {
	mu       sync.Mutex
	clock    clock.PassiveClock
	frozen   bool
	calls    []string
	thawedAt time.Time
	freezeFn func() error
	// closeErr is what Close returns; closeCtxErr is what Close's context said (ctx.Err()).
	closeErr, closeCtxErr error
}

func (f *fakeFreezer) Freeze(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "freeze")
	if f.freezeFn != nil {
		if err := f.freezeFn(); err != nil {
			return err
		}
	}
	f.frozen = true
	return nil
}

func (f *fakeFreezer) Thaw(context.Context) (*engine.Frozen, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "thaw")
	f.frozen = false
	now := time.Now()
	if f.clock != nil {
		now = f.clock.Now()
	}
	f.thawedAt = now
	return &engine.Frozen{StartedAt: now.Add(-50 * time.Millisecond), EndedAt: now,
		Attributes: map[string]string{"startLSN": "0/2000028", "stopLSN": "0/2000100", "timeline": "1"},
		Files:      map[string][]byte{"backup_label": []byte("START WAL LOCATION: 0/2000028\n")}}, nil
}

func (f *fakeFreezer) Close(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "close")
	f.frozen = false
	f.closeCtxErr = ctx.Err()
	return f.closeErr
}

func (f *fakeFreezer) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

// controller plays the CSI snapshot controller with reactors on the fake clientset: each read of
// a VolumeSnapshot first brings its status to what it would be on the fake clock — cut cutDelay
// after its creation, ready readyDelay after it, or failed with errMsg at cutDelay.
type controller struct {
	cutDelay, readyDelay time.Duration
	errMsg               string
	never                bool // cut, but never ready
	noSize               bool // ready, but no restoreSize (optional in the CSI spec)

	mu      sync.Mutex
	clock   clock.PassiveClock
	created map[string]time.Time
	cutAt   time.Time // the last cut
}

var vsResource = snapshotv1.SchemeGroupVersion.WithResource("volumesnapshots")

// install adds the controller's reactors to cs; reactors prepended later run first.
func (c *controller) install(cs *fake.Clientset, clk clock.PassiveClock) {
	c.mu.Lock()
	c.clock, c.created = clk, map[string]time.Time{}
	c.mu.Unlock()
	cs.PrependReactor("create", "volumesnapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		vs := a.(k8stesting.CreateAction).GetObject().(*snapshotv1.VolumeSnapshot)
		c.mu.Lock()
		c.created[vs.Name] = c.clock.Now()
		c.mu.Unlock()
		return false, nil, nil
	})
	cs.PrependReactor("get", "volumesnapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.advance(cs, a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		return false, nil, nil
	})
}

func (c *controller) advance(cs *fake.Clientset, ns, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	created, ok := c.created[name]
	o, err := cs.Tracker().Get(vsResource, ns, name)
	if !ok || err != nil {
		return
	}
	vs := o.(*snapshotv1.VolumeSnapshot).DeepCopy()
	age := c.clock.Since(created)
	st := vs.Status
	if st == nil {
		st = &snapshotv1.VolumeSnapshotStatus{}
	}
	changed := false
	if c.errMsg != "" && st.Error == nil && age >= c.cutDelay {
		st.Error = &snapshotv1.VolumeSnapshotError{Message: &c.errMsg}
		changed = true
	}
	if c.errMsg == "" && st.CreationTime == nil && age >= c.cutDelay {
		cut := metav1.NewTime(created.Add(c.cutDelay))
		st.CreationTime = &cut
		c.cutAt = cut.Time
		changed = true
	}
	if c.errMsg == "" && !c.never && st.CreationTime != nil && st.ReadyToUse == nil && age >= c.readyDelay {
		st.ReadyToUse = new(true)
		if !c.noSize {
			q := resource.MustParse("1Gi")
			st.RestoreSize = &q
		}
		changed = true
	}
	if changed {
		vs.Status = st
		_ = cs.Tracker().Update(vsResource, vs, ns)
	}
}

func (c *controller) lastCut() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAt
}

func newDriver(cs *fake.Clientset, clk clock.Clock) *Driver {
	return &Driver{API: cs.SnapshotV1(), Namespace: "db", ClassName: "fast", ReadyTimeout: 2 * time.Second, Poll: time.Millisecond, MaxPoll: 5 * time.Millisecond, Clock: clk}
}

func request(f engine.Freezer) CreateRequest {
	return CreateRequest{Target: "orders", Engine: "postgres", Mode: "online", Freezer: f,
		Volumes:    []PVC{{Role: RoleData, Name: "pgdata"}, {Role: RoleWAL, Name: "pgwal"}},
		Attributes: map[string]string{"serverVersion": "15.18 (Debian 15.18-1.pgdg120+1)"}}
}

func TestCreateThawsAtCutAndRecords(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx := t.Context()
	clk := newClock()
	// readyToUse comes 1.5 s after the cut, on the fake clock: a thaw within the 50 ms poll cap
	// of the frozen wait proves the driver thaws at the cut, not at readyToUse.
	c := &controller{cutDelay: 30 * time.Millisecond, readyDelay: 1530 * time.Millisecond}
	c.install(cs, clk)
	f := &fakeFreezer{clock: clk}
	meta, err := newDriver(cs, clk).Create(ctx, request(f))
	if err != nil {
		t.Fatal(err)
	}
	cut := c.lastCut()
	if len(meta.Volumes) != 2 || meta.Volumes[0].Role != RoleData || meta.Volumes[1].Role != RoleWAL {
		t.Fatalf("volumes %+v", meta.Volumes)
	}
	// The data volume is cut while frozen (in backup mode), the WAL volume after pg_backup_stop,
	// so that it holds the WAL up to the backup's end.
	dataCut, walCut := meta.Volumes[0].CutAt, meta.Volumes[1].CutAt
	if dataCut.IsZero() || f.thawedAt.Before(dataCut) {
		t.Errorf("thawed at %s, before the data cut at %s", f.thawedAt, dataCut)
	}
	if lag := f.thawedAt.Sub(dataCut); lag > 50*time.Millisecond {
		t.Errorf("thawed %s after the cut: more than the 50 ms poll cap while frozen", lag)
	}
	if walCut.Before(f.thawedAt) || !walCut.Equal(cut) {
		t.Errorf("the WAL volume was cut at %s, before the backup's end at %s (last cut %s)", walCut, f.thawedAt, cut)
	}
	if ready := clk.Since(cut); ready < 1500*time.Millisecond {
		t.Errorf("Create returned %s after the cut, before readyToUse (1.5 s)", ready)
	}
	if got := strings.Join(f.calls, ","); got != "freeze,thaw,close" {
		t.Errorf("calls %s", got)
	}
	if len(meta.Volumes) != 2 || meta.SizeBytes != 2<<30 || meta.Driver != "csi" {
		t.Errorf("meta %+v", meta)
	}
	l, _ := cs.SnapshotV1().VolumeSnapshots("db").List(ctx, metav1.ListOptions{})
	if len(l.Items) != 2 {
		t.Fatalf("%d VolumeSnapshots, want 2", len(l.Items))
	}
	for _, vs := range l.Items {
		for k, want := range map[string]string{LabelManagedBy: "firedrill", LabelTarget: "orders", LabelEngine: "postgres",
			LabelMode: "online", LabelSnapshotID: meta.ID, LabelBatchID: meta.ID, LabelEngineVersion: "15.18_Debian_15.18-1.pgdg120_1"} {
			if vs.Labels[k] != want {
				t.Errorf("%s label %s = %q, want %q", vs.Name, k, vs.Labels[k], want)
			}
		}
		if b, _ := base64.StdEncoding.DecodeString(vs.Annotations[AnnBackupLabel]); !strings.HasPrefix(string(b), "START WAL") {
			t.Errorf("%s backup_label annotation %q", vs.Name, vs.Annotations[AnnBackupLabel])
		}
		if vs.Annotations[AnnStopLSN] != "0/2000100" || vs.Annotations[AnnFrozenSeconds] == "" {
			t.Errorf("%s annotations %v", vs.Name, vs.Annotations)
		}
		if *vs.Spec.VolumeSnapshotClassName != "fast" {
			t.Errorf("class %v", vs.Spec.VolumeSnapshotClassName)
		}
	}
	got, err := newDriver(cs, clk).List(ctx, "orders")
	if err != nil || len(got) != 1 || got[0].ID != meta.ID || string(got[0].EngineFiles["backup_label"]) == "" {
		t.Fatalf("List = %+v, %v", got, err)
	}
}

// A storage driver that reports no restoreSize leaves the size unknown, not zero.
func TestCreateWithoutRestoreSize(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx := t.Context()
	clk := newClock()
	(&controller{cutDelay: 10 * time.Millisecond, readyDelay: 20 * time.Millisecond, noSize: true}).install(cs, clk)
	meta, err := newDriver(cs, clk).Create(ctx, request(&fakeFreezer{clock: clk}))
	if err != nil {
		t.Fatal(err)
	}
	if !meta.SizeUnknown || meta.SizeBytes != 0 {
		t.Errorf("SizeUnknown %v SizeBytes %d, want unknown", meta.SizeUnknown, meta.SizeBytes)
	}
	got, err := newDriver(cs, clk).List(ctx, "orders")
	if err != nil || len(got) != 1 || !got[0].SizeUnknown {
		t.Errorf("List = %+v, %v; want the size unknown", got, err)
	}
}

// Every failure thaws the database before returning and leaves no VolumeSnapshot.
func TestCreateFailuresThawAndCleanUp(t *testing.T) {
	boom := errors.New("etcdserver: request timed out")
	cases := []struct {
		name    string
		react   func(cs *fake.Clientset, cancel context.CancelFunc)
		ctrl    *controller
		timeout time.Duration
		want    func(error) bool
	}{
		{name: "create refused", react: func(cs *fake.Clientset, _ context.CancelFunc) {
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}, ctrl: &controller{}, want: func(err error) bool { return errors.Is(err, boom) }},
		{name: "second create refused", react: func(cs *fake.Clientset, _ context.CancelFunc) {
			var n atomic.Int32
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				if n.Add(1) == 2 {
					return true, nil, boom
				}
				return false, nil, nil
			})
		}, ctrl: &controller{}, want: func(err error) bool { return errors.Is(err, boom) }},
		{name: "get fails while waiting", react: func(cs *fake.Clientset, _ context.CancelFunc) {
			cs.PrependReactor("get", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}, ctrl: &controller{cutDelay: time.Hour}, want: func(err error) bool { return errors.Is(err, boom) }},
		{name: "patch fails after thaw", react: func(cs *fake.Clientset, _ context.CancelFunc) {
			cs.PrependReactor("patch", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}, ctrl: &controller{cutDelay: 5 * time.Millisecond, readyDelay: 10 * time.Millisecond}, want: func(err error) bool { return errors.Is(err, boom) }},
		{name: "status.error", ctrl: &controller{cutDelay: 5 * time.Millisecond, errMsg: "rpc error: code = ResourceExhausted desc = quota exceeded"},
			want: func(err error) bool {
				return errors.Is(err, ErrSnapshotFailed) && strings.Contains(err.Error(), "rpc error: code = ResourceExhausted desc = quota exceeded")
			}},
		{name: "never ready", ctrl: &controller{cutDelay: 5 * time.Millisecond, never: true},
			want: func(err error) bool { return errors.Is(err, ErrNotReady) }},
		{name: "cancelled while waiting for the cut", react: func(cs *fake.Clientset, cancel context.CancelFunc) {
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				cancel()
				return false, nil, nil
			})
		}, ctrl: &controller{cutDelay: time.Hour}, want: func(err error) bool { return errors.Is(err, context.Canceled) }},
		{name: "freeze fails", ctrl: &controller{}, want: func(err error) bool { return errors.Is(err, boom) }},
	}
	runs := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 {
				runs++
				cs := fake.NewSimpleClientset()
				ctx, cancel := context.WithCancel(t.Context())
				clk := newClock()
				if tc.react != nil {
					tc.react(cs, cancel)
				}
				tc.ctrl.install(cs, clk)
				f := &fakeFreezer{clock: clk}
				if tc.name == "freeze fails" {
					f.freezeFn = func() error { return boom }
				}
				d := newDriver(cs, clk)
				d.ReadyTimeout = 50 * time.Millisecond
				_, err := d.Create(ctx, request(f))
				cancel()
				if err == nil || !tc.want(err) {
					t.Fatalf("err = %v", err)
				}
				if f.isFrozen() || f.calls[len(f.calls)-1] != "close" {
					t.Errorf("freezer left frozen: calls %v", f.calls)
				}
				// The tracker is the fake's storage, below any injected fault.
				left, err := cs.Tracker().List(snapshotv1.SchemeGroupVersion.WithResource("volumesnapshots"), snapshotv1.SchemeGroupVersion.WithKind("VolumeSnapshot"), "db")
				if err != nil {
					t.Fatal(err)
				}
				if l := left.(*snapshotv1.VolumeSnapshotList); len(l.Items) != 0 {
					t.Errorf("%d VolumeSnapshots left", len(l.Items))
				}
			}
		})
	}
	t.Logf("%d injected-fault runs, all thawed, none left a VolumeSnapshot", runs)
}

func TestListOnlyCompleteAndReady(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx := t.Context()
	clk := newClock()
	(&controller{cutDelay: time.Millisecond, readyDelay: 2 * time.Millisecond}).install(cs, clk)
	d := newDriver(cs, clk)
	var ids []string
	for range 3 {
		m, err := d.Create(ctx, request(&fakeFreezer{clock: clk}))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		clk.Step(110 * time.Millisecond)
	}
	// Make the middle one not ready: it must disappear from the list.
	name := VolumeSnapshotName("orders", ids[1], RoleWAL)
	vs, _ := cs.SnapshotV1().VolumeSnapshots("db").Get(ctx, name, metav1.GetOptions{})
	vs.Status.ReadyToUse = new(false)
	if _, err := cs.SnapshotV1().VolumeSnapshots("db").UpdateStatus(context.Background(), vs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := d.List(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[0] {
		t.Errorf("List = %v, want [%s %s]", idsOf(got), ids[2], ids[0])
	}
	if other, _ := d.List(context.Background(), "other"); len(other) != 0 {
		t.Errorf("another target's list = %v", idsOf(other))
	}
}

func idsOf(s []snapshot.Metadata) []string {
	out := make([]string, len(s))
	for i, m := range s {
		out[i] = m.ID
	}
	return out
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"15.18 (Debian 15.18-1.pgdg120+1)": "15.18_Debian_15.18-1.pgdg120_1",
		"10.11.6-MariaDB-0+deb12u1":        "10.11.6-MariaDB-0_deb12u1",
		"7.0.15":                           "7.0.15",
		"":                                 "",
		strings.Repeat("a", 70):            strings.Repeat("a", 63),
	} {
		if got := LabelValue(in); got != want {
			t.Errorf("LabelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// A single-volume database in backup mode: its pg_wal lives on the data volume, so the data
// volume is cut twice, once while frozen (the data) and once after pg_backup_stop (the WAL to the
// backup's end); a crash-consistent snapshot of it is one cut.
func TestCreateCutsTheWALAgainAfterTheBackupEnds(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		roles []string
	}{{"online", []string{RoleData, RoleWAL}}, {"crash-consistent", []string{RoleData}}} {
		t.Run(tc.mode, func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			clk := newClock()
			c := &controller{cutDelay: 10 * time.Millisecond, readyDelay: 20 * time.Millisecond}
			c.install(cs, clk)
			f := &fakeFreezer{clock: clk}
			req := request(f)
			req.Mode = tc.mode
			req.Volumes = []PVC{{Role: RoleData, Name: "pgdata"}}
			meta, err := newDriver(cs, clk).Create(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, v := range meta.Volumes {
				roles = append(roles, v.Role)
				if v.PVC != "pgdata" {
					t.Errorf("volume %+v: want a cut of pgdata", v)
				}
			}
			if strings.Join(roles, ",") != strings.Join(tc.roles, ",") {
				t.Fatalf("roles %v, want %v", roles, tc.roles)
			}
			if tc.mode == "online" && meta.Volumes[1].CutAt.Before(f.thawedAt) {
				t.Errorf("WAL cut at %s, before the backup ended at %s", meta.Volumes[1].CutAt, f.thawedAt)
			}
			l, _ := cs.SnapshotV1().VolumeSnapshots("db").List(t.Context(), metav1.ListOptions{})
			if len(l.Items) != len(tc.roles) {
				t.Errorf("%d VolumeSnapshots, want %d", len(l.Items), len(tc.roles))
			}
		})
	}
}
