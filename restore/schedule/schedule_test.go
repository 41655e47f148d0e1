package schedule

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// waitFor polls cond (the scheduler runs in goroutines); it is not a timed assertion: the
// deadline only stops a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// step advances the fake clock once the scheduler waits on it.
func step(t *testing.T, fc *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	waitFor(t, "the scheduler waits on the clock", fc.HasWaiters)
	fc.Step(d)
}

func TestEveryRunsAtOnceThenEachInterval(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	s := New(fc, 1, nil)
	var runs atomic.Int32
	s.Set([]Job{{Name: "audit/orders", Next: Every(5 * time.Minute), Run: func(context.Context) { runs.Add(1) }}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Minute); close(done) }()
	waitFor(t, "the first run", func() bool { return runs.Load() == 1 })
	step(t, fc, 4*time.Minute)
	time.Sleep(5 * time.Millisecond)
	if runs.Load() != 1 {
		t.Errorf("ran %d times 4 minutes in, want 1", runs.Load())
	}
	step(t, fc, time.Minute)
	waitFor(t, "the second run at 5 minutes", func() bool { return runs.Load() == 2 })
	if next := s.NextRuns()["audit/orders"]; !next.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("next run %s, want %s", next, t0.Add(10*time.Minute))
	}
	cancel()
	<-done
}

func TestNoOverlapAndConcurrencyLimit(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	s := New(fc, 1, nil)
	release := make(chan struct{})
	var mu sync.Mutex
	running, maxRunning, starts := 0, 0, map[string]int{}
	job := func(name string) Job {
		return Job{Name: name, Key: name, Limited: true, Next: Every(time.Minute), Run: func(context.Context) {
			mu.Lock()
			running++
			starts[name]++
			maxRunning = max(maxRunning, running)
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			mu.Unlock()
		}}
	}
	s.Set([]Job{job("drill/a"), job("drill/b")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Hour); close(done) }()
	waitFor(t, "one drill running", func() bool { mu.Lock(); defer mu.Unlock(); return running == 1 })
	// Its next time comes while it still runs: it must not start again, nor may b (limit 1).
	step(t, fc, 2*time.Minute)
	time.Sleep(5 * time.Millisecond)
	mu.Lock()
	if running != 1 || len(starts) != 1 {
		t.Errorf("running %d, started %v: want one drill, the other waiting for the slot", running, starts)
	}
	mu.Unlock()
	release <- struct{}{}
	waitFor(t, "the other drill takes the slot", func() bool { mu.Lock(); defer mu.Unlock(); return len(starts) == 2 && running == 1 })
	close(release)
	cancel()
	<-done
	if maxRunning != 1 {
		t.Errorf("%d drills ran at once with concurrency 1", maxRunning)
	}
}

func TestJitterIsBoundedAndStable(t *testing.T) {
	for _, name := range []string{"drill/orders", "drill/billing", "drill/x"} {
		j := Job{Name: name, Jitter: 10 * time.Minute}
		o := j.Offset()
		if o < 0 || o >= 10*time.Minute || o != (Job{Name: name, Jitter: 10 * time.Minute}).Offset() {
			t.Errorf("%s: offset %s", name, o)
		}
	}
	if (Job{Name: "a"}).Offset() != 0 {
		t.Error("no jitter, yet an offset")
	}
	if (Job{Name: "drill/orders", Jitter: time.Hour}).Offset() == (Job{Name: "drill/billing", Jitter: time.Hour}).Offset() {
		t.Error("two targets on one schedule start at the same moment")
	}
}

func TestCronNext(t *testing.T) {
	monthly, err := cron.ParseStandard("0 3 1 * *")
	if err != nil {
		t.Fatal(err)
	}
	next := Cron(monthly)
	tests := []struct{ last, want time.Time }{
		{time.Time{}, time.Unix(0, 0)}, // never drilled: due at once
		{time.Date(2026, 11, 1, 3, 0, 5, 0, time.UTC), time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)},
		{time.Date(2026, 10, 17, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)}, // missed while down: due now
	}
	for _, tt := range tests {
		if got := next(tt.last); !got.Equal(tt.want) {
			t.Errorf("after %s: %s, want %s", tt.last, got, tt.want)
		}
	}
}

func TestShutdownWaitsThenCancels(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	s := New(fc, 1, nil)
	started := make(chan struct{})
	var cancelled atomic.Bool
	s.Set([]Job{{Name: "drill/orders", Limited: true, Next: Every(time.Hour), Run: func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
	}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, 2*time.Minute); close(done) }()
	<-started
	cancel()
	time.Sleep(5 * time.Millisecond)
	if cancelled.Load() {
		t.Fatal("the running drill was cancelled before the grace period")
	}
	step(t, fc, 2*time.Minute)
	<-done
	if !cancelled.Load() {
		t.Error("Run returned before the interrupted drill did")
	}
}

func TestRunDueRunsWhatIsDueOnce(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	s := New(fc, 1, nil)
	var audit, due, future atomic.Int32
	var auditSawDrill atomic.Bool
	s.Set([]Job{
		{Name: "audit/orders", Next: Every(time.Minute), Run: func(context.Context) { audit.Add(1); auditSawDrill.Store(due.Load() == 1) }},
		{Name: "drill/orders", Limited: true, Next: Every(time.Hour), Last: t0.Add(-2 * time.Hour), Run: func(context.Context) { time.Sleep(time.Millisecond); due.Add(1) }},
		{Name: "drill/billing", Limited: true, Next: Every(time.Hour), Last: t0.Add(-time.Minute), Run: func(context.Context) { future.Add(1) }},
	})
	s.RunDue(context.Background())
	if audit.Load() != 1 || due.Load() != 1 || future.Load() != 0 {
		t.Errorf("runs: audit %d, overdue drill %d, drill not due %d; want 1, 1, 0", audit.Load(), due.Load(), future.Load())
	}
	if !auditSawDrill.Load() {
		t.Error("the audit ran before the drill finished: it would judge drill recency on stale results")
	}
}

func TestSetKeepsLastAcrossReload(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	s := New(fc, 1, nil)
	j := Job{Name: "audit/orders", Next: Every(5 * time.Minute), Last: t0, Run: func(context.Context) {}}
	s.Set([]Job{j})
	j.Last = time.Time{} // a reload knows no better
	s.Set([]Job{j})
	if next := s.NextRuns()["audit/orders"]; !next.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("after a reload the audit is due %s, want %s", next, t0.Add(5*time.Minute))
	}
}
