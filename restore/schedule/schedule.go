// Package schedule runs the serve daemon's jobs (each target's audits and drills) on their
// schedules with an injected clock: no two runs of one key (a target's drill) overlap, limited
// jobs (drills) share a concurrency limit, due times carry a deterministic per-job jitter, and
// a shutdown lets running jobs finish within a grace period before cancelling them.
package schedule

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Job is one recurring piece of work.
type Job struct {
	// Name identifies the job across reloads ("drill/orders").
	Name string
	// Key: two jobs of one key never run at once (a target's drill and its audit may; two
	// drills of one target may not). Empty: the Name.
	Key string
	// Limited jobs count against the scheduler's concurrency limit (drills).
	Limited bool
	// Next is the job's next due time after a run that started at last (zero: it never ran);
	// the zero time means never.
	Next func(last time.Time) time.Time
	// Last is when the job last started (from the history), zero when never.
	Last time.Time
	// Jitter spreads the due time: the job starts up to Jitter after it, by a fixed offset
	// derived from its Name (so restarts do not move it).
	Jitter time.Duration
	// Run does the work; ctx is cancelled at shutdown after the grace period.
	Run func(ctx context.Context)

	ranOnce bool
}

// Every is a Next for a job that runs every d, and at once when it never ran.
func Every(d time.Duration) func(time.Time) time.Time {
	return func(last time.Time) time.Time {
		if last.IsZero() {
			return time.Unix(0, 0)
		}
		return last.Add(d)
	}
}

// Cron is a Next for a job on a schedule (anything with Next, such as a robfig/cron Schedule);
// a job that never ran is due at once: a target never verified should not wait a month.
func Cron(s interface{ Next(time.Time) time.Time }) func(time.Time) time.Time {
	return func(last time.Time) time.Time {
		if last.IsZero() {
			return time.Unix(0, 0)
		}
		return s.Next(last)
	}
}

// Offset is the job's fixed jitter offset, in [0, Jitter).
func (j Job) Offset() time.Duration {
	if j.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(j.Name))
	return time.Duration(h.Sum64() % uint64(j.Jitter))
}

func (j Job) key() string {
	if j.Key != "" {
		return j.Key
	}
	return j.Name
}

// due is when the job should start next, jitter included; zero: never.
func (j Job) due() time.Time {
	next := j.Next(j.Last)
	if next.IsZero() {
		return next
	}
	return next.Add(j.Offset())
}

// Scheduler runs jobs. Build it with New; Set its jobs; then Run or RunDue.
type Scheduler struct {
	clock       clock.Clock
	concurrency int
	log         *slog.Logger

	mu      sync.Mutex
	jobs    map[string]*Job
	running map[string]string // key -> job name
	limited int
	wake    chan struct{}
	wg      sync.WaitGroup
	// runCtx is cancelled when the grace period after shutdown ends.
	runCtx    context.Context
	cancelRun context.CancelFunc
}

// New returns a scheduler on clk (nil: the real clock) running at most concurrency limited
// jobs at once.
func New(clk clock.Clock, concurrency int, log *slog.Logger) *Scheduler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if concurrency < 1 {
		concurrency = 1
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{clock: clk, concurrency: concurrency, log: log, jobs: map[string]*Job{},
		running: map[string]string{}, wake: make(chan struct{}, 1)}
}

// Set replaces the jobs (a configuration reload). A running job finishes; its successor (same
// Name) keeps the time it last started.
func (s *Scheduler) Set(jobs []Job) {
	s.mu.Lock()
	next := make(map[string]*Job, len(jobs))
	for i := range jobs {
		j := jobs[i]
		if old, ok := s.jobs[j.Name]; ok && old.Last.After(j.Last) {
			j.Last = old.Last
		}
		next[j.Name] = &j
	}
	s.jobs = next
	s.mu.Unlock()
	s.poke()
}

// SetConcurrency changes the limit (a reload).
func (s *Scheduler) SetConcurrency(n int) {
	s.mu.Lock()
	if n >= 1 {
		s.concurrency = n
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// NextRuns is each job's next due time (jitter included); a running job's is its next one.
func (s *Scheduler) NextRuns() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.jobs))
	for name, j := range s.jobs {
		if d := j.due(); !d.IsZero() {
			out[name] = d
		}
	}
	return out
}

// Running is the name of each running job.
func (s *Scheduler) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.running))
	for _, name := range s.running {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Run starts jobs as they fall due until ctx ends, then waits up to grace for running jobs
// before cancelling them, and returns once every job has returned.
func (s *Scheduler) Run(ctx context.Context, grace time.Duration) {
	s.runCtx, s.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	defer s.cancelRun()
	for {
		wait := s.startDue(s.runCtx, false)
		var timer <-chan time.Time
		if wait >= 0 {
			timer = s.clock.After(wait)
		}
		select {
		case <-ctx.Done():
			s.shutdown(grace)
			return
		case <-s.wake:
		case <-timer:
		}
	}
}

// RunDue starts every job that is due now once, and waits for them (serve --once): the
// limited jobs (drills) first, then the others (audits).
func (s *Scheduler) RunDue(ctx context.Context) {
	s.runCtx, s.cancelRun = context.WithCancel(ctx)
	defer s.cancelRun()
	for {
		s.startDue(s.runCtx, true)
		s.mu.Lock()
		pending := 0
		now := s.clock.Now()
		for _, j := range s.jobs {
			if d := j.due(); !d.IsZero() && !d.After(now) && !j.ranOnce {
				pending++
			}
		}
		s.mu.Unlock()
		if pending == 0 || ctx.Err() != nil {
			break
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
		}
	}
	s.wg.Wait()
}

func (s *Scheduler) shutdown(grace time.Duration) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	if names := s.Running(); len(names) > 0 {
		s.log.Info("waiting for running jobs before shutting down", "jobs", names, "grace", grace)
	}
	select {
	case <-done:
		return
	case <-s.clock.After(grace):
		s.log.Warn("interrupting running jobs: the shutdown grace period is over (they clean up before they return)", "jobs", s.Running())
		s.cancelRun()
	}
	<-done
}

// startDue starts the jobs that are due and may start, and returns how long until the next
// one is due (-1: none).
func (s *Scheduler) startDue(ctx context.Context, once bool) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	names := make([]string, 0, len(s.jobs))
	for n := range s.jobs {
		names = append(names, n)
	}
	// Earliest due first, so a freed slot goes to the job that waited longest.
	sort.Slice(names, func(a, b int) bool {
		da, db := s.jobs[names[a]].due(), s.jobs[names[b]].due()
		if !da.Equal(db) {
			return da.Before(db)
		}
		return names[a] < names[b]
	})
	// Once: drills first, then the audits, which then see the drills' fresh results.
	limitedPending := false
	if once {
		limitedPending = s.limited > 0
		for _, j := range s.jobs {
			if d := j.due(); j.Limited && !j.ranOnce && !d.IsZero() && !d.After(now) {
				limitedPending = true
			}
		}
	}
	wait := time.Duration(-1)
	for _, n := range names {
		j := s.jobs[n]
		due := j.due()
		if due.IsZero() || (once && j.ranOnce) || (once && !j.Limited && limitedPending) {
			continue
		}
		if due.After(now) {
			if d := due.Sub(now); wait < 0 || d < wait {
				wait = d
			}
			continue
		}
		if _, busy := s.running[j.key()]; busy {
			continue // no overlap: it starts when the running one ends (and is still due)
		}
		if j.Limited && s.limited >= s.concurrency {
			continue
		}
		s.start(ctx, j, now)
	}
	return wait
}

// start runs j (s.mu held).
func (s *Scheduler) start(ctx context.Context, j *Job, now time.Time) {
	j.Last = now
	j.ranOnce = true
	s.running[j.key()] = j.Name
	if j.Limited {
		s.limited++
	}
	s.wg.Add(1)
	run, key, limited, name := j.Run, j.key(), j.Limited, j.Name
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			if limited {
				s.limited--
			}
			s.mu.Unlock()
			s.poke()
		}()
		s.log.Debug("job started", "job", name)
		run(ctx)
	}()
}
