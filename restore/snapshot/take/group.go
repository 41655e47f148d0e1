package take

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// GroupResult is a batch of snapshots taken in one freeze.
type GroupResult struct {
	Group   string `json:"group"`
	BatchID string `json:"batchId"`
	// FrozenSeconds is the group's frozen window: from the first member's freeze to the last
	// member's thaw. It is bounded by the group's maximum.
	FrozenSeconds float64 `json:"frozenSeconds"`
	// Method is how the members were cut: MethodVolumeGroupSnapshot (one atomic cut of the
	// storage) or MethodFreezeAll (one VolumeSnapshot or copy per member, all taken while every
	// member was frozen).
	Method string `json:"method"`
	// VolumeGroupSnapshot names the group snapshot that cut the members.
	VolumeGroupSnapshot string `json:"volumeGroupSnapshot,omitempty"`
	// Fallback says why a VolumeGroupSnapshot was not used where one was asked for (auto).
	Fallback         string              `json:"fallback,omitempty"`
	MaxFreezeSeconds float64             `json:"maxFreezeSeconds"`
	Snapshots        []snapshot.Metadata `json:"snapshots"`
	// Status is snapshot.StatusComplete, or snapshot.ResultError with Error saying why no
	// snapshot of the group was taken (set by the command that reports the result).
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	// Retention is what each member's retention rules deleted after the group's snapshot.
	Retention map[string]*snapshot.Retention `json:"retention,omitempty"`
}

// ErrGroupFailed wraps the first member failure of a group; every member was thawed and the
// partial batch deleted.
var ErrGroupFailed = errors.New("group snapshot failed")

// TakeGroup snapshots members under one batch id with freeze-all ordering (no
// VolumeGroupSnapshot): TakeGroupWith without a group driver.
func TakeGroup(ctx context.Context, name string, members []Options, maxFreeze time.Duration) (*GroupResult, error) {
	return TakeGroupWith(ctx, GroupOptions{Name: name, Members: members, MaxFreeze: maxFreeze})
}

// takeFreezeAll snapshots members under one batch id: freeze all, cut all, thaw all. The window
// from the first freeze to the last thaw is bounded by maxFreeze. A failure in any member
// thaws every member and deletes every snapshot of the batch, complete or not.
//
// Members run concurrently and meet at two barriers: after freezing (nobody cuts before all
// are frozen) and before thawing (nobody thaws before all are cut). This orders freezes and
// cuts across databases; it is not one atomic cut of the storage (that is takeVolumeGroup).
func takeFreezeAll(ctx context.Context, name string, members []Options, maxFreeze time.Duration) (*GroupResult, error) {
	batch := newBatchID(members[0].Now())
	opened := make([]*opened, len(members))
	// closeOpened releases the members opened so far after err; what releasing one returned
	// is joined into err, never dropped. The context survives ctx's cancellation: an
	// interrupted group still releases its members.
	closeOpened := func(err error) error {
		cctx := context.WithoutCancel(ctx)
		for i, fz := range opened {
			if fz != nil {
				if cerr := fz.freezer.Close(cctx); cerr != nil {
					err = errors.Join(err, fmt.Errorf("and while releasing member %s (it may still be frozen or in backup mode): %w", members[i].Target, cerr))
				}
			}
		}
		return err
	}
	for i := range members {
		members[i].BatchID = batch
		fz, err := open(ctx, &members[i])
		if err != nil {
			return nil, closeOpened(fmt.Errorf("while connecting to group %s member %s: %w", name, members[i].Target, err))
		}
		opened[i] = fz
		if fz.backup != nil {
			// The engine's backup tool takes its own locks: a group freeze held around it
			// would block it, and without one the member would not be cut with the rest.
			return nil, closeOpened(fmt.Errorf("%w: group %s member %s is backed up by its engine's own tool on the local driver, which cannot be frozen with the group; snapshot it on its own, or use driver csi", ErrUnsupported, name, members[i].Target))
		}
	}

	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	run := &groupRun{n: len(members), frozen: newBarrier(len(members)), cut: newBarrier(len(members)), now: members[0].Now, clock: membersClock(members)}
	if maxFreeze > 0 {
		run.max, run.expire = maxFreeze, func() { cancel(ErrFreezeTimeout) }
	}

	results := make([]*snapshot.Metadata, len(members))
	errs := make([]error, len(members))
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for i := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &memberFreezer{Freezer: opened[i].freezer, run: run}
			meta, err := create(gctx, &members[i], m, opened[i])
			if err != nil {
				errs[i] = fmt.Errorf("member %s: %w", members[i].Target, err)
				once.Do(func() { first = errs[i] })
				cancel(errs[i])
				return
			}
			results[i] = meta
		}()
	}
	wg.Wait()
	run.stopTimer()

	res := &GroupResult{Group: name, BatchID: batch, Method: MethodFreezeAll, FrozenSeconds: run.window().Seconds(), MaxFreezeSeconds: maxFreeze.Seconds()}
	if first != nil {
		if errors.Is(context.Cause(gctx), ErrFreezeTimeout) {
			first = fmt.Errorf("%w (%s): %w", ErrFreezeTimeout, maxFreeze, first)
		}
		// Every member is thawed by now (each driver closes its freezer on failure); delete
		// what the batch left.
		var derrs []error
		for i, meta := range results {
			if meta != nil {
				if err := deleteSnapshot(ctx, &members[i], meta.ID); err != nil {
					derrs = append(derrs, err)
				}
			}
		}
		for i := range members {
			if members[i].CSI != nil {
				if err := members[i].CSI.DeleteBatch(context.WithoutCancel(ctx), batch); err != nil {
					derrs = append(derrs, err)
				}
			}
		}
		err := fmt.Errorf("%w: %s (batch %s; every member was thawed and the partial batch deleted): %w", ErrGroupFailed, name, batch, first)
		if len(derrs) > 0 {
			err = fmt.Errorf("%w; but cleaning up failed: %w", err, errors.Join(derrs...))
		}
		return res, err
	}
	for _, m := range results {
		res.Snapshots = append(res.Snapshots, *m)
	}
	return res, nil
}

// deleteSnapshot deletes one snapshot of a member with its driver, after an interrupt too.
func deleteSnapshot(ctx context.Context, o *Options, id string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if o.CSI != nil {
		return o.CSI.Delete(dctx, id)
	}
	return o.Repository.Delete(dctx, id)
}

// membersClock is the clock the first member's CSI driver waits on, when it has one that can
// run a function later, else the real clock. The group's freeze limit is timed on it, so the
// limit runs on the same time as the waits it bounds (and a test's fake clock drives both).
func membersClock(members []Options) clock.WithDelayedExecution {
	if d := members[0].CSI; d != nil {
		if c, ok := d.Clock.(clock.WithDelayedExecution); ok {
			return c
		}
	}
	return clock.RealClock{}
}

// groupRun is the shared state of one group's freeze.
type groupRun struct {
	n           int
	frozen, cut *barrier
	now         func() time.Time
	// clock times the freeze limit; nil means the real clock.
	clock  clock.WithDelayedExecution
	max    time.Duration
	expire func()

	mu        sync.Mutex
	timer     clock.Timer
	firstAt   time.Time
	lastThaw  time.Time
	thawCount int
}

func (r *groupRun) freezing() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstAt.IsZero() {
		r.firstAt = r.now()
		if r.max > 0 {
			c := r.clock
			if c == nil {
				c = clock.RealClock{}
			}
			r.timer = c.AfterFunc(r.max, r.expire)
		}
	}
}

func (r *groupRun) thawed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastThaw = r.now()
	r.thawCount++
	if r.thawCount == r.n && r.timer != nil {
		r.timer.Stop()
	}
}

func (r *groupRun) stopTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
}

func (r *groupRun) window() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstAt.IsZero() || r.lastThaw.IsZero() {
		return 0
	}
	return r.lastThaw.Sub(r.firstAt)
}

// memberFreezer makes one member's freeze and thaw wait for the rest of the group.
type memberFreezer struct {
	engine.Freezer
	run    *groupRun
	thawed bool
}

func (m *memberFreezer) Freeze(ctx context.Context) error {
	m.run.freezing()
	if err := m.Freezer.Freeze(ctx); err != nil {
		return err
	}
	if m.run.frozen == nil { // the group driver orders freezes itself
		return nil
	}
	if err := m.run.frozen.wait(ctx); err != nil {
		return fmt.Errorf("while waiting for the other members to freeze: %w", err)
	}
	return nil
}

func (m *memberFreezer) Thaw(ctx context.Context) (*engine.Frozen, error) {
	if m.run.cut != nil {
		if err := m.run.cut.wait(ctx); err != nil {
			return nil, fmt.Errorf("while waiting for the other members' cuts: %w", err)
		}
	}
	f, err := m.Freezer.Thaw(ctx)
	m.thawed = true
	m.run.thawed()
	return f, err
}

func (m *memberFreezer) Close(ctx context.Context) error {
	err := m.Freezer.Close(ctx)
	if !m.thawed {
		m.thawed = true
		m.run.thawed()
	}
	return err
}

// barrier releases its waiters once n have arrived.
type barrier struct {
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, done: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		close(b.done)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func newBatchID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
