package drill

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// fakeRuntime is a runtime that records what the drill asked of it.
type fakeRuntime struct {
	stopped []string
}

func (f *fakeRuntime) ScratchOwner(string) (postgres.RunAs, error) { return postgres.RunAs{}, nil }
func (f *fakeRuntime) Start(context.Context, StartSpec) (Throwaway, error) {
	return nil, errors.New("not started")
}
func (f *fakeRuntime) StopLeftover(_ context.Context, dir string) ([]string, error) {
	f.stopped = append(f.stopped, dir)
	return []string{"container of " + dir}, nil
}

func TestRuntimeRegistry(t *testing.T) {
	fake := &fakeRuntime{}
	reg := map[string]RuntimeFactory{"local": NewLocalRuntime, "fake": func(context.Context, RuntimeOptions) (Runtime, error) { return fake, nil }}
	tests := []struct {
		name    string
		reg     map[string]RuntimeFactory
		kind    string
		want    any
		wantErr string
	}{
		{"empty kind is local", nil, "", &localRuntime{}, ""},
		{"default registry has local", nil, "local", &localRuntime{}, ""},
		{"registered runtime", reg, "fake", fake, ""},
		{"unknown runtime names what there is", reg, "podman", nil, `restore.runtime "podman" is not available in this build (fake, local)`},
		{"docker needs registering", nil, "docker", nil, `"docker" is not available in this build (local)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Drill{Runtimes: tt.reg}
			rt, err := d.runtime(t.Context(), RuntimeOptions{Kind: tt.kind})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrUnsupported saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch w := tt.want.(type) {
			case *localRuntime:
				if _, ok := rt.(*localRuntime); !ok {
					t.Errorf("runtime %T, want local", rt)
				}
			default:
				if rt != w {
					t.Errorf("runtime %T, want %T", rt, w)
				}
			}
		})
	}
}

// A runtime that can stop its own leftovers is asked to, besides the local sweep.
func TestStopLeftoverAsksTheRuntime(t *testing.T) {
	fake := &fakeRuntime{}
	d := &Drill{StopLeftover: func(_ context.Context, dir string) ([]string, error) { return []string{"server in " + dir}, nil }}
	got, err := d.stopLeftover(fake)(t.Context(), "/scratch/x")
	if err != nil || !slices.Equal(got, []string{"server in /scratch/x", "container of /scratch/x"}) || !slices.Equal(fake.stopped, []string{"/scratch/x"}) {
		t.Errorf("stopped %v (runtime asked for %v), err %v", got, fake.stopped, err)
	}
	got, _ = d.stopLeftover(&localRuntime{})(t.Context(), "/scratch/y")
	if !slices.Equal(got, []string{"server in /scratch/y"}) {
		t.Errorf("local runtime: stopped %v", got)
	}
}

// A drill whose runtime is not available says so and makes nothing.
func TestRunUnknownRuntime(t *testing.T) {
	src := &emptySource{}
	d := &Drill{Source: src}
	res, err := d.Run(t.Context(), Options{Target: "t", Engine: "postgres", Driver: "local", Runtime: RuntimeOptions{Kind: "podman", ScratchDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != reports.StatusError || !strings.Contains(res.Error, `"podman" is not available`) || src.listed {
		t.Errorf("status %s error %q listed %v", res.Status, res.Error, src.listed)
	}
}

// sweepingRuntime also removes what outlived its scratch directory, as the docker runtime does.
type sweepingRuntime struct {
	fakeRuntime
	swept []string
}

func (s *sweepingRuntime) SweepTarget(_ context.Context, target string, _ GCOptions) ([]string, error) {
	s.swept = append(s.swept, target)
	return []string{"container of a removed directory"}, nil
}

// gc asks each target's runtime to stop its leftovers on the directories it removes (a kept
// drill's container with --include-kept) and to sweep what outlived its directory; a runtime
// gc cannot reach is an error (exit 3), and the other targets are still swept.
func TestGCAsksEachTargetsRuntime(t *testing.T) {
	root := t.TempDir()
	kept := deadDrill(t, root, "orders", "0000cafe", true)
	dead := deadDrill(t, root, "payments", "0000dead", false)
	fake := &sweepingRuntime{}
	d := &Drill{
		History: &memHistory{},
		Runtimes: map[string]RuntimeFactory{"local": NewLocalRuntime,
			"fake": func(context.Context, RuntimeOptions) (Runtime, error) { return fake, nil },
			"down": func(context.Context, RuntimeOptions) (Runtime, error) { return nil, errors.New("no engine answers") }},
		StopLeftover: func(_ context.Context, dir string) ([]string, error) { return nil, nil },
	}
	res, err := d.GC(t.Context(), []GCTarget{
		{Name: "orders", ScratchDir: root, Runtime: RuntimeOptions{Kind: "fake"}},
		{Name: "payments", ScratchDir: root},
		{Name: "billing", ScratchDir: root, Runtime: RuntimeOptions{Kind: "down"}},
	}, GCOptions{IncludeKept: true})
	found := res.Leftovers
	if err == nil || !strings.Contains(err.Error(), "target billing's restore runtime") || !strings.Contains(err.Error(), "no engine answers") {
		t.Errorf("err = %v, want the unreachable runtime of billing named", err)
	}
	removed := map[string]bool{}
	for _, lo := range found {
		removed[lo.ScratchDir] = lo.Action == reports.LeftoverRemoved
	}
	if !removed[kept] || !removed[dead] {
		t.Errorf("removed %v, want both %s and %s", removed, kept, dead)
	}
	if !slices.Contains(fake.stopped, kept) {
		t.Errorf("the fake runtime was asked to stop leftovers on %v, want the kept drill's %s", fake.stopped, kept)
	}
	if !slices.Equal(fake.swept, []string{"orders"}) {
		t.Errorf("targets swept by the runtime: %v, want [orders]", fake.swept)
	}
}
