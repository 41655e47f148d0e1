package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/firedrill/firedrill/restore/engine"
)

// Attribute keys recorded with a snapshot.
const (
	AttrServerVersion = "serverVersion"
	AttrLockCount     = "fsyncLockCount"
	AttrLockMode      = "lockMode"
)

// ErrUnlock means fsyncUnlock did not succeed: the server may still refuse writes.
var ErrUnlock = errors.New("fsyncUnlock failed: the server may still be locked (run db.fsyncUnlock() in mongosh)")

// Admin runs commands on the admin database (*mongo.Database satisfies it).
type Admin interface {
	RunCommand(ctx context.Context, cmd any, opts ...options.Lister[options.RunCmdOptions]) *mongo.SingleResult
}

// Options configures a Freezer.
type Options struct {
	// CrashConsistent takes no lock: valid only for an atomic snapshot of a volume holding both
	// the data files and the journal.
	CrashConsistent bool
	Now             func() time.Time
}

// Freezer locks a mongod with fsyncLock and unlocks it with fsyncUnlock. The lock belongs to
// the server, not the connection, so Close always unlocks what Freeze locked.
type Freezer struct {
	admin Admin
	opts  Options

	info      map[string]string
	locked    bool
	frozen    bool
	lockCount int64
	startedAt time.Time
}

var _ engine.Freezer = (*Freezer)(nil)

// New returns a freezer running commands on admin (client.Database("admin")).
func New(admin Admin, opts Options) *Freezer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Freezer{admin: admin, opts: opts, info: map[string]string{}}
}

// ServerInfo reads the server version.
func (f *Freezer) ServerInfo(ctx context.Context) (map[string]string, error) {
	var bi struct {
		Version string `bson:"version"`
	}
	if err := f.admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return nil, fmt.Errorf("while reading buildInfo: %w", err)
	}
	f.info[AttrServerVersion] = bi.Version
	return map[string]string{AttrServerVersion: bi.Version}, nil
}

// Freeze flushes and locks the server against writes (fsync with lock: true).
func (f *Freezer) Freeze(ctx context.Context) error {
	if len(f.info) == 0 {
		if _, err := f.ServerInfo(ctx); err != nil {
			return err
		}
	}
	if f.opts.CrashConsistent {
		f.startedAt = f.opts.Now()
		f.frozen = true
		return nil
	}
	f.startedAt = f.opts.Now()
	// The lock may be taken even when the reply is lost (a cancelled context): Close unlocks.
	f.locked = true
	var res struct {
		LockCount int64 `bson:"lockCount"`
	}
	if err := f.admin.RunCommand(ctx, bson.D{{Key: "fsync", Value: 1}, {Key: "lock", Value: true}}).Decode(&res); err != nil {
		return fmt.Errorf("while locking the server (fsyncLock): %w", err)
	}
	f.lockCount = res.LockCount
	f.frozen = true
	return nil
}

// Thaw unlocks the server and returns the window.
func (f *Freezer) Thaw(ctx context.Context) (*engine.Frozen, error) {
	if !f.frozen {
		return nil, errors.New("while thawing: not frozen")
	}
	if f.locked {
		if err := f.unlock(ctx); err != nil {
			return nil, err
		}
	}
	f.frozen = false
	attrs := map[string]string{AttrLockMode: "fsyncLock"}
	if f.opts.CrashConsistent {
		attrs[AttrLockMode] = "crash-consistent"
	} else {
		attrs[AttrLockCount] = strconv.FormatInt(f.lockCount, 10)
	}
	for k, v := range f.info {
		attrs[k] = v
	}
	return &engine.Frozen{StartedAt: f.startedAt, EndedAt: f.opts.Now(), Attributes: attrs}, nil
}

func (f *Freezer) unlock(ctx context.Context) error {
	if err := f.admin.RunCommand(ctx, bson.D{{Key: "fsyncUnlock", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnlock, err)
	}
	f.locked = false
	return nil
}

// Close unlocks if still locked, retrying for a few seconds, and ignores ctx's cancellation.
func (f *Freezer) Close(ctx context.Context) error {
	f.frozen = false
	if !f.locked {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		if err = f.unlock(cctx); err == nil {
			return nil
		}
		select {
		case <-cctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
