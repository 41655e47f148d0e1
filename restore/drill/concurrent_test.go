package drill

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// overlapCheck is a check that waits, up to a deadline, for every other overlapCheck of its
// group to have started: run one after the other, none of them sees the others.
type overlapCheck struct {
	name       string
	concurrent bool
	group      *sync.WaitGroup
	wait       time.Duration
}

func (c *overlapCheck) Name() string      { return c.name }
func (c *overlapCheck) Engines() []string { return nil }
func (c *overlapCheck) Concurrent() bool  { return c.concurrent }
func (c *overlapCheck) Run(context.Context, *checks.Env) []checks.Finding {
	if !c.concurrent {
		return []checks.Finding{checks.Passf(c.name, nil, "ran alone")}
	}
	c.group.Done()
	done := make(chan struct{})
	go func() { c.group.Wait(); close(done) }()
	select {
	case <-done:
		return []checks.Finding{checks.Passf(c.name, nil, "ran beside the others")}
	case <-time.After(c.wait):
		return []checks.Finding{checks.Failf(c.name, nil, "the other concurrent checks did not start")}
	}
}

type keptServer struct{}

func (keptServer) WaitReady(context.Context, func(string)) error { return nil }
func (keptServer) Stop(time.Duration) (bool, error)              { return true, nil }
func (keptServer) Running() bool                                 { return true }
func (keptServer) Remove() error                                 { return nil }
func (keptServer) Describe() *reports.Runtime                    { return &reports.Runtime{} }
func (keptServer) Kept() *reports.Kept                           { return &reports.Kept{} }
func (keptServer) ServerLog() string                             { return "" }
func (keptServer) LogEvidence(int) []string                      { return nil }

// TestConcurrentChecksRunSideBySide: the concurrent checks run together where the first of
// them would run, their findings keep the checks' order, and each has its own phase marked
// concurrent; too many connections for the throwaway and they run one after the other.
func TestConcurrentChecksRunSideBySide(t *testing.T) {
	off := false
	none := checks.Config{Amcheck: checks.AmcheckOn(false), Checksums: &off, RowCounts: &checks.RowCountConfig{Enabled: &off}}
	build := func(parallel int, wait time.Duration) (*run, *checks.Env) {
		var group sync.WaitGroup
		group.Add(2)
		cs := []checks.Check{
			&overlapCheck{name: "a", concurrent: true, group: &group, wait: wait},
			&overlapCheck{name: "between"},
			&overlapCheck{name: "b", concurrent: true, group: &group, wait: wait},
		}
		r := &run{d: &Drill{Now: time.Now, Progress: nopProgress{}}, o: Options{Checks: none, Engine: "postgres", Keep: true, RTO: time.Hour},
			res: &reports.DrillResult{}, start: time.Now(), copy: &Copy{Checks: cs}}
		return r, &checks.Env{Parallel: parallel}
	}
	r, env := build(2, 10*time.Second)
	if err := r.checkAndStop(context.Background(), keptServer{}, env, &snapshot.Metadata{}); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, f := range r.res.Checks[:3] {
		order = append(order, f.Check)
		if f.Status != checks.Pass {
			t.Errorf("%s: %s %q", f.Check, f.Status, f.Message)
		}
	}
	if order[0] != "a" || order[1] != "between" || order[2] != "b" {
		t.Errorf("findings in order %v, want [a between b]", order)
	}
	concurrent := map[string]bool{}
	for _, p := range r.res.Phases {
		concurrent[p.Name] = p.Concurrent
	}
	if !concurrent["check:a"] || !concurrent["check:b"] || concurrent["check:between"] {
		t.Errorf("phases %+v: want check:a and check:b concurrent, check:between not", r.res.Phases)
	}

	// 2×20 connections do not fit the throwaway: one after the other (a then fails alone).
	r, env = build(20, 100*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- r.checkAndStop(context.Background(), keptServer{}, env, &snapshot.Metadata{}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("checkAndStop did not return")
	}
	for _, p := range r.res.Phases {
		if p.Concurrent {
			t.Errorf("phase %s concurrent with checks.parallel 20, want one after the other", p.Name)
		}
	}
}
