package take

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

// journal records every freezer call of a group, in order.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	j.events = append(j.events, e)
	j.mu.Unlock()
}

type fakeFreezer struct {
	name   string
	j      *journal
	mu     sync.Mutex
	frozen bool
	fail   error
}

func (f *fakeFreezer) Freeze(context.Context) error {
	f.j.add("freeze " + f.name)
	if f.fail != nil {
		return f.fail
	}
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
	return nil
}

func (f *fakeFreezer) Thaw(context.Context) (*engine.Frozen, error) {
	f.j.add("thaw " + f.name)
	f.mu.Lock()
	f.frozen = false
	f.mu.Unlock()
	now := time.Now()
	return &engine.Frozen{StartedAt: now, EndedAt: now}, nil
}

func (f *fakeFreezer) Close(context.Context) error {
	f.mu.Lock()
	f.frozen = false
	f.mu.Unlock()
	return nil
}

func (f *fakeFreezer) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

// cutter plays the CSI controller with a reactor: the first read of a VolumeSnapshot after its
// creation finds it cut and ready, unless its target is stuck. It returns at once; ctx is unused
// (kept so that `go cutter(ctx, cs, "")` callers from the polling version still compile) and it
// holds the fake's lock while it adds the reactor, which PrependReactor itself does not, so
// such a caller does not race with requests already under way.
func cutter(_ context.Context, cs *fake.Clientset, stuck string) {
	gvr := snapshotv1.SchemeGroupVersion.WithResource("volumesnapshots")
	cs.Lock()
	defer cs.Unlock()
	cs.PrependReactor("get", "volumesnapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		o, err := cs.Tracker().Get(gvr, a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return false, nil, nil
		}
		vs := o.(*snapshotv1.VolumeSnapshot).DeepCopy()
		if vs.Status != nil || vs.Labels[csi.LabelTarget] == stuck {
			return false, nil, nil
		}
		now := metav1.Now()
		vs.Status = &snapshotv1.VolumeSnapshotStatus{CreationTime: &now, ReadyToUse: new(true)}
		_ = cs.Tracker().Update(gvr, vs, a.GetNamespace())
		return false, nil, nil
	})
}

// autoClock is a fake clock that moves forward by whatever a driver waits for, the moment it
// waits: nothing sleeps in real time, and the group's freeze limit (timed on the same clock)
// fires once the waits have added up to it.
type autoClock struct{ *testingclock.FakeClock }

func newClock() autoClock {
	return autoClock{testingclock.NewFakeClock(time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC))}
}

func (c autoClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.Step(d) // fires t: its channel holds one value
	return t
}

func members(cs *fake.Clientset, j *journal, names ...string) ([]Options, []*fakeFreezer) {
	return membersOn(cs, nil, j, names...)
}

// membersOn is members whose drivers wait on clk (nil: the real clock).
func membersOn(cs *fake.Clientset, clk clock.Clock, j *journal, names ...string) ([]Options, []*fakeFreezer) {
	var out []Options
	var fs []*fakeFreezer
	for _, n := range names {
		f := &fakeFreezer{name: n, j: j}
		fs = append(fs, f)
		out = append(out, Options{Target: n, Engine: "mariadb", Mode: "online", Freezer: f,
			CSI:     &csi.Driver{API: cs.SnapshotV1(), Namespace: "db", ClassName: "c", Poll: time.Millisecond, MaxPoll: 2 * time.Millisecond, ReadyTimeout: time.Second, Clock: clk},
			Volumes: []csi.PVC{{Role: csi.RoleData, Name: n + "-data"}}})
	}
	return out, fs
}

func leftover(t *testing.T, cs *fake.Clientset) int {
	t.Helper()
	o, err := cs.Tracker().List(snapshotv1.SchemeGroupVersion.WithResource("volumesnapshots"), snapshotv1.SchemeGroupVersion.WithKind("VolumeSnapshot"), "db")
	if err != nil {
		t.Fatal(err)
	}
	return len(o.(*snapshotv1.VolumeSnapshotList).Items)
}

func TestGroupFreezesAllBeforeAnyThaw(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx := t.Context()
	cutter(ctx, cs, "")
	j := &journal{}
	// On the fake clock the 5 s limit cannot fire under a loaded machine's delays.
	ms, _ := membersOn(cs, newClock(), j, "a", "b", "c")
	res, err := TakeGroup(ctx, "shop", ms, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Snapshots) != 3 || res.BatchID == "" {
		t.Fatalf("result %+v", res)
	}
	for _, s := range res.Snapshots {
		if s.BatchID != res.BatchID {
			t.Errorf("%s batch %q, want %q", s.Target, s.BatchID, res.BatchID)
		}
	}
	lastFreeze, firstThaw := -1, len(j.events)
	for i, e := range j.events {
		if e[:6] == "freeze" {
			lastFreeze = i
		} else if i < firstThaw {
			firstThaw = i
		}
	}
	if lastFreeze > firstThaw {
		t.Errorf("a member thawed before every member froze: %v", j.events)
	}
	if res.FrozenSeconds <= 0 || res.FrozenSeconds > 5 {
		t.Errorf("frozen %v s", res.FrozenSeconds)
	}
}

func TestGroupFailureThawsAllAndDeletesBatch(t *testing.T) {
	boom := errors.New("lock wait timeout exceeded")
	cases := []struct {
		name      string
		failFirst bool
		stuck     string
		maxFreeze time.Duration
		want      error
	}{
		{name: "a member cannot freeze", failFirst: true, maxFreeze: 5 * time.Second, want: boom},
		{name: "a member's cut never comes", stuck: "b", maxFreeze: 100 * time.Millisecond, want: ErrFreezeTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 10 {
				cs := fake.NewSimpleClientset()
				ctx, cancel := context.WithCancel(t.Context())
				cutter(ctx, cs, tc.stuck)
				j := &journal{}
				// The stuck member's polls move the fake clock; the limit fires once they add
				// up to it, after no real wait.
				ms, fs := membersOn(cs, newClock(), j, "a", "b", "c")
				if tc.failFirst {
					fs[2].fail = boom
				}
				_, err := TakeGroup(ctx, "shop", ms, tc.maxFreeze)
				cancel()
				if !errors.Is(err, ErrGroupFailed) || !errors.Is(err, tc.want) {
					t.Fatalf("err = %v", err)
				}
				for _, f := range fs {
					if f.isFrozen() {
						t.Errorf("member %s left frozen", f.name)
					}
				}
				if n := leftover(t, cs); n != 0 {
					t.Errorf("%d VolumeSnapshots of the failed batch left", n)
				}
			}
		})
	}
}

func TestSupported(t *testing.T) {
	for _, tc := range []struct {
		engine, mode, driver string
		ok                   bool
	}{
		{"postgres", "online", "local", true},
		{"postgres", "crash-consistent", "local", false},
		{"postgres", "crash-consistent", "csi", true},
		{"mariadb", "online", "local", true},
		{"mariadb", "crash-consistent", "local", false},
		{"mariadb", "online", "csi", true},
		{"mysql", "crash-consistent", "csi", true},
		{"redis", "online", "local", true},
		{"redis", "crash-consistent", "csi", false},
		{"mongodb", "online", "local", true},
		{"oracle", "online", "csi", false},
	} {
		err := Supported(tc.engine, tc.mode, tc.driver)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUnsupported)) {
			t.Errorf("Supported(%s, %s, %s) = %v", tc.engine, tc.mode, tc.driver, err)
		}
	}
}
