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

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// fakeFreezer records the order of calls and whether it is frozen.
type fakeFreezer struct {
	mu       sync.Mutex
	frozen   bool
	calls    []string
	thawedAt time.Time
	freezeFn func() error
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
	f.thawedAt = time.Now()
	now := time.Now()
	return &engine.Frozen{StartedAt: now.Add(-50 * time.Millisecond), EndedAt: now,
		Attributes: map[string]string{"startLSN": "0/2000028", "stopLSN": "0/2000100", "timeline": "1"},
		Files:      map[string][]byte{"backup_label": []byte("START WAL LOCATION: 0/2000028\n")}}, nil
}

func (f *fakeFreezer) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "close")
	f.frozen = false
	return nil
}

func (f *fakeFreezer) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

// controller plays the CSI snapshot controller: cut after cutDelay, ready after readyDelay, or
// fail with errMsg.
type controller struct {
	cutDelay, readyDelay time.Duration
	errMsg               string
	never                bool // cut, but never ready
	noSize               bool // ready, but no restoreSize (optional in the CSI spec)
	cutAt                atomic.Value
}

func (c *controller) run(ctx context.Context, cs *fake.Clientset, ns string) {
	seen := map[string]time.Time{}
	for ctx.Err() == nil {
		l, _ := cs.SnapshotV1().VolumeSnapshots(ns).List(ctx, metav1.ListOptions{})
		for _, vs := range l.Items {
			first, ok := seen[vs.Name]
			if !ok {
				seen[vs.Name] = time.Now()
				continue
			}
			age := time.Since(first)
			st := vs.Status
			if st == nil {
				st = &snapshotv1.VolumeSnapshotStatus{}
			}
			changed := false
			switch {
			case c.errMsg != "" && st.Error == nil && age >= c.cutDelay:
				st.Error = &snapshotv1.VolumeSnapshotError{Message: &c.errMsg}
				changed = true
			case c.errMsg == "" && st.CreationTime == nil && age >= c.cutDelay:
				now := metav1.Now()
				st.CreationTime = &now
				c.cutAt.Store(time.Now())
				changed = true
			case c.errMsg == "" && !c.never && st.CreationTime != nil && st.ReadyToUse == nil && age >= c.readyDelay:
				st.ReadyToUse = new(true)
				if !c.noSize {
					q := resource.MustParse("1Gi")
					st.RestoreSize = &q
				}
				changed = true
			}
			if changed {
				vs.Status = st
				_, _ = cs.SnapshotV1().VolumeSnapshots(ns).UpdateStatus(ctx, &vs, metav1.UpdateOptions{})
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newDriver(cs *fake.Clientset) *Driver {
	return &Driver{API: cs.SnapshotV1(), Namespace: "db", ClassName: "fast", ReadyTimeout: 2 * time.Second, Poll: time.Millisecond, MaxPoll: 5 * time.Millisecond}
}

func request(f engine.Freezer) CreateRequest {
	return CreateRequest{Target: "orders", Engine: "postgres", Mode: "online", Freezer: f,
		Volumes:    []PVC{{Role: RoleData, Name: "pgdata"}, {Role: RoleWAL, Name: "pgwal"}},
		Attributes: map[string]string{"serverVersion": "15.18 (Debian 15.18-1.pgdg120+1)"}}
}

func TestCreateThawsAtCutAndRecords(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// readyToUse comes 1.5 s after the cut: a thaw within 1 s proves the driver thaws at the
	// cut, without a timed bound that a loaded machine could break.
	c := &controller{cutDelay: 30 * time.Millisecond, readyDelay: 1530 * time.Millisecond}
	go c.run(ctx, cs, "db")
	f := &fakeFreezer{}
	meta, err := newDriver(cs).Create(ctx, request(f))
	if err != nil {
		t.Fatal(err)
	}
	cut, _ := c.cutAt.Load().(time.Time)
	if f.thawedAt.Before(cut) {
		t.Errorf("thawed at %s, before the cut at %s", f.thawedAt, cut)
	}
	if lag := f.thawedAt.Sub(cut); lag >= time.Second {
		t.Errorf("thawed %s after the cut: not before readyToUse, so the thaw waited for the upload", lag)
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
	got, err := newDriver(cs).List(ctx, "orders")
	if err != nil || len(got) != 1 || got[0].ID != meta.ID || string(got[0].EngineFiles["backup_label"]) == "" {
		t.Fatalf("List = %+v, %v", got, err)
	}
}

// A storage driver that reports no restoreSize leaves the size unknown, not zero.
func TestCreateWithoutRestoreSize(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go (&controller{cutDelay: 10 * time.Millisecond, readyDelay: 20 * time.Millisecond, noSize: true}).run(ctx, cs, "db")
	meta, err := newDriver(cs).Create(ctx, request(&fakeFreezer{}))
	if err != nil {
		t.Fatal(err)
	}
	if !meta.SizeUnknown || meta.SizeBytes != 0 {
		t.Errorf("SizeUnknown %v SizeBytes %d, want unknown", meta.SizeUnknown, meta.SizeBytes)
	}
	got, err := newDriver(cs).List(ctx, "orders")
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
				cctx, stopCtrl := context.WithCancel(t.Context())
				if tc.react != nil {
					tc.react(cs, cancel)
				}
				go tc.ctrl.run(cctx, cs, "db")
				f := &fakeFreezer{}
				if tc.name == "freeze fails" {
					f.freezeFn = func() error { return boom }
				}
				d := newDriver(cs)
				d.ReadyTimeout = 50 * time.Millisecond
				_, err := d.Create(ctx, request(f))
				stopCtrl()
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
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go (&controller{cutDelay: time.Millisecond, readyDelay: 2 * time.Millisecond}).run(ctx, cs, "db")
	d := newDriver(cs)
	var ids []string
	for range 3 {
		m, err := d.Create(ctx, request(&fakeFreezer{}))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		time.Sleep(1100 * time.Millisecond / 10)
	}
	// Make the middle one not ready: it must disappear from the list.
	name := VolumeSnapshotName("orders", ids[1], RoleWAL)
	vs, _ := cs.SnapshotV1().VolumeSnapshots("db").Get(ctx, name, metav1.GetOptions{})
	cancel()
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
