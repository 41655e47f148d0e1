package take

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// closeFails is a freezer whose release fails, as a pg_backup_stop or an UNLOCK TABLES on a
// dropped connection does.
type closeFails struct{ fakeFreezer }

func (c *closeFails) Close(context.Context) error {
	return errors.New("pg_backup_stop: connection lost")
}

// registerFake registers an engine whose Open is open, for the test's duration.
func registerFake(t *testing.T, open func(context.Context, engine.OpenRequest) (*engine.Opened, error)) {
	t.Helper()
	engine.Register(engine.Spec{
		Name: "fakedb", Modes: []string{"online"}, ModeHelp: "use online",
		Drivers:  map[string][]string{"local": {"online"}, "csi": {"online"}},
		ParseDSN: func(string) error { return nil },
		Open:     open,
	})
	t.Cleanup(func() { engine.Unregister("fakedb") })
}

// Take snapshots an engine added by registration alone: its Open gets the target, the resolved
// data directory and the repository guard, and its copy rule decides what is copied.
func TestTakeRegisteredEngine(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"table": "rows", "scratch.tmp": "noise"} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got engine.OpenRequest
	registerFake(t, func(_ context.Context, req engine.OpenRequest) (*engine.Opened, error) {
		got = req
		return &engine.Opened{
			Freezer: &fakeFreezer{name: req.Target, j: &journal{}},
			Info:    map[string]string{"serverVersion": "1.0"},
			Rule: func(rel string, _ bool) engine.CopyAction {
				if strings.HasSuffix(rel, ".tmp") {
					return engine.Skip
				}
				return engine.Copy
			},
		}, nil
	})
	repo := local.New(filepath.Join(dir, "repo"), 1)
	meta, err := Take(t.Context(), Options{Target: "shop", Engine: "fakedb", Mode: "online", DSN: "fake://x",
		DataDir: data, Repository: repo, MaxFreeze: time.Minute})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if got.Target != "shop" || got.Mode != "online" || got.DataDir != data || got.Volumes || got.Outside == nil {
		t.Errorf("Open got %+v", got)
	}
	if err := got.Outside("a tablespace", dir); err == nil || !errors.Is(err, ErrMismatch) {
		t.Errorf("the repository guard accepted a directory holding the repository: %v", err)
	}
	if meta.Engine != "fakedb" || meta.EngineVersion != "1.0" {
		t.Errorf("metadata engine %q version %q", meta.Engine, meta.EngineVersion)
	}
	snaps, err := repo.List(t.Context())
	if err != nil || len(snaps) != 1 {
		t.Fatalf("List = %d snapshots, %v", len(snaps), err)
	}
	copied := 0
	_ = filepath.WalkDir(filepath.Join(dir, "repo"), func(p string, d os.DirEntry, _ error) error {
		switch d.Name() {
		case "table":
			copied++
		case "scratch.tmp":
			t.Errorf("the engine's copy rule skips %s, but it was copied", p)
		}
		return nil
	})
	if copied != 1 {
		t.Errorf("table copied %d times, want 1", copied)
	}
}

// A member whose release fails after another member could not be opened: the failed release
// is joined into the returned error with the member's name, never dropped.
func TestGroupOpenFailureJoinsFailedRelease(t *testing.T) {
	registerFake(t, func(_ context.Context, req engine.OpenRequest) (*engine.Opened, error) {
		if req.Target == "b" {
			return nil, engine.ErrUnreachable
		}
		return &engine.Opened{Freezer: &closeFails{fakeFreezer{name: req.Target, j: &journal{}}}}, nil
	})
	for _, tc := range []struct {
		name string
		run  func(context.Context, []Options) error
	}{
		{"freeze-all", func(ctx context.Context, m []Options) error {
			_, err := takeFreezeAll(ctx, "g", m, time.Minute)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := []Options{{Target: "a", Engine: "fakedb", Mode: "online", Now: time.Now}, {Target: "b", Engine: "fakedb", Mode: "online", Now: time.Now}}
			err := tc.run(t.Context(), m)
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("err = %v, want ErrUnreachable", err)
			}
			for _, want := range []string{"member b", "releasing member a", "pg_backup_stop: connection lost"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
		})
	}
}
