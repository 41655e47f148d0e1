package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	snapshotfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/retention"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

var (
	errFreeze = errors.New("fake: the database refused to freeze")
	errKube   = errors.New("fake: no kubeconfig")
	errSink   = errors.New("fake: the sink is down")
	now       = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
)

// fakeFactory hands out fake Kubernetes clients, or errKube for the kubeconfigs in fail.
type fakeFactory struct {
	fail  map[string]bool
	calls []string
}

func (f *fakeFactory) Kube(subject, kubeconfig string) (*KubeClients, error) {
	f.calls = append(f.calls, subject+"@"+kubeconfig)
	if f.fail[kubeconfig] {
		return nil, fmt.Errorf("%w for %s", errKube, subject)
	}
	return &KubeClients{Snapshots: snapshotfake.NewSimpleClientset(), Core: kubefake.NewClientset()}, nil
}

// recorder is a sink that records; err, when set, is what it returns.
type recorder struct {
	snapshots []snapshot.Result
	groups    []*take.GroupResult
	err       error
}

func (r *recorder) Snapshot(_ context.Context, res snapshot.Result) error {
	r.snapshots = append(r.snapshots, res)
	return r.err
}

func (r *recorder) Group(_ context.Context, res *take.GroupResult) error {
	r.groups = append(r.groups, res)
	return r.err
}

// fakeTaker stands for the snapshot core: it publishes a snapshot in a local target's
// repository (so retention has something to count), or fails the targets in fail.
type fakeTaker struct {
	fail  map[string]bool
	taken []string
	n     int
}

func (f *fakeTaker) take(_ context.Context, o take.Options) (*snapshot.Metadata, error) {
	f.taken = append(f.taken, o.Target)
	if f.fail[o.Target] {
		return nil, errFreeze
	}
	f.n++
	m := snapshot.Metadata{ID: fmt.Sprintf("20261130T12%04dZ-abcdef", f.n), Target: o.Target, Engine: o.Engine, Mode: o.Mode,
		Driver: o.DriverName(), TakenAt: now.Add(time.Duration(f.n) * time.Second), ManifestSHA256: "x"}
	if o.Repository != nil {
		writeSnapshot(o.Repository.Dir, m)
	}
	return &m, nil
}

func (f *fakeTaker) takeGroup(ctx context.Context, o take.GroupOptions) (*take.GroupResult, error) {
	res := &take.GroupResult{Group: o.Name, BatchID: "b1", Method: "freeze-all"}
	for _, m := range o.Members {
		// All members or none, as take.TakeGroupWith: a failing member leaves no snapshot.
		if f.fail[m.Target] {
			f.taken = append(f.taken, m.Target)
			return nil, fmt.Errorf("%w: member %s: %w", take.ErrGroupFailed, m.Target, errFreeze)
		}
	}
	for _, m := range o.Members {
		meta, err := f.take(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("%w: member %s: %w", take.ErrGroupFailed, m.Target, err)
		}
		res.Snapshots = append(res.Snapshots, *meta)
	}
	return res, nil
}

// writeSnapshot publishes a complete snapshot in a local repository, as Repository.Create does.
func writeSnapshot(repo string, m snapshot.Metadata) {
	dir := filepath.Join(repo, m.ID)
	must(os.MkdirAll(dir, 0o755))
	b, err := json.Marshal(m)
	must(err)
	must(os.WriteFile(filepath.Join(dir, "meta.json"), b, 0o600))
	must(os.WriteFile(filepath.Join(dir, "manifest.sha256"), nil, 0o600))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// fixture is a validated configuration of three targets (orders and billing local, items
// csi) and a group shop of the two local ones; orders keeps its last snapshot only and
// already has two older ones.
type fixture struct {
	targets    []Target // orders, billing, items
	shop       *Group
	ordersRepo string
	older      []string
	history    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	dsn := func() (string, error) { return "host=/nonexistent/socket", nil }
	local := func(name string, keepLast int) Target {
		return Target{Name: name, Engine: "postgres", Mode: "online", DSN: dsn, Driver: "local", MaxFreeze: time.Minute, FastCheckpoint: true,
			Local:     LocalSnapshot{DataDir: filepath.Join(dir, "data-"+name), Repository: filepath.Join(dir, "repo-"+name), Parallel: 4},
			Retention: retention.Policy{KeepLast: keepLast}}
	}
	fx := &fixture{history: filepath.Join(dir, "history")}
	fx.targets = []Target{local("orders", 1), local("billing", 0), {
		Name: "items", Engine: "postgres", Mode: "crash-consistent", DSN: dsn, Driver: csi.DriverName, MaxFreeze: time.Minute,
		CSI: CSISnapshot{Namespace: "db", PVC: "items-data", ClassName: "fast", Kubeconfig: "kc-items", ReadyTimeout: 10 * time.Minute},
	}}
	fx.shop = &Group{Name: "shop", Members: fx.targets[:2], MaxFreeze: time.Minute, VolumeGroupSnapshot: take.VolumeGroupAuto}
	orders := &fx.targets[0]
	fx.ordersRepo = Repository(orders).Dir
	for i, id := range []string{"20261101T000000Z-000001", "20261102T000000Z-000002"} {
		writeSnapshot(fx.ordersRepo, snapshot.Metadata{ID: id, Target: "orders", Engine: "postgres", Driver: "local",
			TakenAt: now.Add(-time.Duration(48-i*24) * time.Hour), ManifestSHA256: "x"})
		fx.older = append(fx.older, id)
	}
	return fx
}

func (fx *fixture) options() Options {
	return Options{Now: func() time.Time { return now }, History: history.New(fx.history)}
}

func (fx *fixture) repoIDs(t *testing.T) []string {
	t.Helper()
	snaps, err := Repository(&fx.targets[0]).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func statuses(rs []snapshot.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Target+"="+r.Status)
	}
	return out
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failTake    []string
		failKube    []string
		brokenHist  bool
		sinkErr     error
		interrupted bool
		want        []string
		wantTaken   []string
		wantErrIs   []error
		wantErrText []string
		check       func(t *testing.T, fx *fixture, res []snapshot.Result)
	}{{
		name:      "all taken, retention deletes what keepLast no longer keeps",
		want:      []string{"orders=complete", "billing=complete", "items=complete"},
		wantTaken: []string{"orders", "billing", "items"},
		check: func(t *testing.T, fx *fixture, res []snapshot.Result) {
			rep := res[0].Retention
			if rep == nil || rep.Kept != 1 || rep.Rules != "keepLast 1" || len(rep.Deleted) != 2 || rep.Error != "" {
				t.Fatalf("orders retention = %+v", rep)
			}
			if ids := fx.repoIDs(t); !slices.Equal(ids, []string{res[0].Snapshot.ID}) {
				t.Errorf("orders' repository holds %v, want only the new snapshot %s", ids, res[0].Snapshot.ID)
			}
			if res[1].Retention != nil || res[2].Retention != nil {
				t.Errorf("targets without rules have a retention report: %+v, %+v", res[1].Retention, res[2].Retention)
			}
		},
	}, {
		name:        "one target failing: the others are still taken, its error joined",
		failTake:    []string{"orders"},
		want:        []string{"orders=error", "billing=complete", "items=complete"},
		wantTaken:   []string{"orders", "billing", "items"},
		wantErrIs:   []error{errFreeze},
		wantErrText: []string{"while taking a snapshot of orders: fake: the database refused to freeze"},
		check: func(t *testing.T, fx *fixture, res []snapshot.Result) {
			if res[0].Snapshot != nil || res[0].Retention != nil || !strings.Contains(res[0].Error, errFreeze.Error()) {
				t.Errorf("failed row = %+v", res[0])
			}
			if ids := fx.repoIDs(t); !slices.Equal(ids, fx.older) {
				t.Errorf("retention ran after a failed snapshot: orders holds %v", ids)
			}
		},
	}, {
		name:        "a target whose clients cannot be built fails alone",
		failKube:    []string{"kc-items"},
		want:        []string{"orders=complete", "billing=complete", "items=error"},
		wantTaken:   []string{"orders", "billing"},
		wantErrIs:   []error{errKube},
		wantErrText: []string{"while taking a snapshot of items: fake: no kubeconfig for target items"},
	}, {
		name:        "retention failing: the snapshot stands, the run fails, nothing deleted",
		brokenHist:  true,
		want:        []string{"orders=complete", "billing=complete", "items=complete"},
		wantTaken:   []string{"orders", "billing", "items"},
		wantErrText: []string{"the snapshot of orders was taken, but retention failed", "nothing was deleted"},
		check: func(t *testing.T, fx *fixture, res []snapshot.Result) {
			rep := res[0].Retention
			if res[0].Snapshot == nil || rep == nil || !strings.Contains(rep.Error, "drill history") || len(rep.Deleted) != 0 {
				t.Fatalf("orders = %+v, retention %+v", res[0], rep)
			}
			if ids := fx.repoIDs(t); len(ids) != 3 {
				t.Errorf("orders holds %v, want the two older and the new one", ids)
			}
		},
	}, {
		name:        "interrupted: nothing attempted, every target has a row",
		interrupted: true,
		want:        []string{"orders=error", "billing=error", "items=error"},
		check: func(t *testing.T, _ *fixture, res []snapshot.Result) {
			for _, r := range res {
				if r.Error != "not attempted: interrupted" {
					t.Errorf("%s: %q", r.Target, r.Error)
				}
			}
		},
	}, {
		name:        "a sink that fails: every snapshot taken, the run fails",
		sinkErr:     errSink,
		want:        []string{"orders=complete", "billing=complete", "items=complete"},
		wantTaken:   []string{"orders", "billing", "items"},
		wantErrIs:   []error{errSink},
		wantErrText: []string{"while recording the snapshot result of billing"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			if tc.brokenHist {
				must(os.MkdirAll(fx.history, 0o755))
				must(os.WriteFile(filepath.Join(fx.history, "orders"), []byte("not a directory"), 0o600))
			}
			f := &fakeFactory{fail: map[string]bool{}}
			for _, k := range tc.failKube {
				f.fail[k] = true
			}
			tk := &fakeTaker{fail: map[string]bool{}}
			for _, n := range tc.failTake {
				tk.fail[n] = true
			}
			sink := &recorder{err: tc.sinkErr}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.interrupted {
				cancel()
			}
			r := newRunner(f, sink, fx.options())
			r.take, r.takeGroup = tk.take, tk.takeGroup
			res, err := r.targets(ctx, fx.targets)
			if got := statuses(res); !slices.Equal(got, tc.want) {
				t.Errorf("results %v, want %v", got, tc.want)
			}
			if !slices.Equal(tk.taken, tc.wantTaken) {
				t.Errorf("taken %v, want %v", tk.taken, tc.wantTaken)
			}
			if got := statuses(sink.snapshots); !slices.Equal(got, tc.want) {
				t.Errorf("sink got %v, want %v", got, tc.want)
			}
			if (err != nil) != (len(tc.wantErrIs)+len(tc.wantErrText) > 0) {
				t.Fatalf("err = %v", err)
			}
			for _, want := range tc.wantErrIs {
				if !errors.Is(err, want) {
					t.Errorf("err %v is not %v", err, want)
				}
			}
			for _, want := range tc.wantErrText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q lacks %q", err, want)
				}
			}
			if tc.check != nil {
				tc.check(t, fx, res)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failTake   []string
		brokenHist bool
		wantStatus string
		wantErrIs  []error
		wantErr    []string
		check      func(t *testing.T, fx *fixture, res *take.GroupResult)
	}{{
		name:       "taken: every member's retention applied",
		wantStatus: snapshot.StatusComplete,
		check: func(t *testing.T, fx *fixture, res *take.GroupResult) {
			if len(res.Snapshots) != 2 || len(res.Retention) != 1 || res.Retention["orders"] == nil || len(res.Retention["orders"].Deleted) != 2 {
				t.Fatalf("result = %+v", res)
			}
			if ids := fx.repoIDs(t); len(ids) != 1 {
				t.Errorf("orders holds %v after keepLast 1", ids)
			}
		},
	}, {
		name:       "a member failing: no snapshot, a result saying why, no retention",
		failTake:   []string{"billing"},
		wantStatus: snapshot.ResultError,
		wantErrIs:  []error{take.ErrGroupFailed, errFreeze},
		wantErr:    []string{"while taking a snapshot of group shop"},
		check: func(t *testing.T, fx *fixture, res *take.GroupResult) {
			if res.Snapshots == nil || len(res.Snapshots) != 0 || res.Retention != nil || !strings.Contains(res.Error, "member billing") {
				t.Errorf("result = %+v", res)
			}
			if ids := fx.repoIDs(t); !slices.Equal(ids, fx.older) {
				t.Errorf("retention ran after a failed group: orders holds %v", ids)
			}
		},
	}, {
		name:       "retention failing: the group's snapshot stands, the run fails",
		brokenHist: true,
		wantStatus: snapshot.StatusComplete,
		wantErr:    []string{"the snapshot of orders was taken, but retention failed"},
		check: func(t *testing.T, _ *fixture, res *take.GroupResult) {
			if rep := res.Retention["orders"]; rep == nil || rep.Error == "" || len(res.Snapshots) != 2 {
				t.Errorf("result = %+v", res)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			if tc.brokenHist {
				must(os.MkdirAll(fx.history, 0o755))
				must(os.WriteFile(filepath.Join(fx.history, "orders"), []byte("not a directory"), 0o600))
			}
			tk := &fakeTaker{fail: map[string]bool{}}
			for _, n := range tc.failTake {
				tk.fail[n] = true
			}
			sink := &recorder{}
			g := fx.shop
			r := newRunner(&fakeFactory{}, sink, fx.options())
			r.take, r.takeGroup = tk.take, tk.takeGroup
			res, err := r.group(context.Background(), g)
			if res == nil || res.Status != tc.wantStatus || res.Group != "shop" {
				t.Fatalf("result = %+v, want status %s", res, tc.wantStatus)
			}
			if len(sink.groups) != 1 || sink.groups[0] != res {
				t.Errorf("sink got %v, want the result once", sink.groups)
			}
			if (err != nil) != (len(tc.wantErrIs)+len(tc.wantErr) > 0) {
				t.Fatalf("err = %v", err)
			}
			for _, want := range tc.wantErrIs {
				if !errors.Is(err, want) {
					t.Errorf("err %v is not %v", err, want)
				}
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q lacks %q", err, want)
				}
			}
			if res.Status == snapshot.ResultError && res.Error != err.Error() {
				t.Errorf("result error %q, want the run's %q", res.Error, err)
			}
			if tc.check != nil {
				tc.check(t, fx, res)
			}
		})
	}
}

// TestKubeClientsPerKubeconfig: a csi target's driver is built on the factory's clients of its
// own kubeconfig, named for the target in the factory's error.
func TestKubeClientsPerKubeconfig(t *testing.T) {
	fx := newFixture(t)
	f := &fakeFactory{}
	items := &fx.targets[2]
	o, err := takeOptions(f, items, nopProgress{}, slogDiscard(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if o.CSI == nil || o.Repository != nil || o.CSI.Namespace != "db" || len(o.Volumes) != 1 || o.Volumes[0].Name != "items-data" {
		t.Errorf("options = %+v", o)
	}
	if !slices.Equal(f.calls, []string{"target items@kc-items"}) {
		t.Errorf("factory calls %v", f.calls)
	}
}

type nopProgress struct{}

func (nopProgress) Phase(string)  {}
func (nopProgress) Status(string) {}
func (nopProgress) Done()         {}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
