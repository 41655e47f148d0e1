package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// A failed release after a failed snapshot (pg_backup_stop, UNLOCK) reaches the caller joined
// with the snapshot's own failure, and the release runs on a context that was not cancelled,
// so an interrupted snapshot still ends backup mode.
func TestCreateFailureJoinsFailedRelease(t *testing.T) {
	errFreeze := errors.New("pg_backup_start failed")
	errThaw := errors.New("pg_backup_stop failed")
	errRelease := errors.New("pg_backup_stop: connection reset by peer")
	tests := []struct {
		name string
		// run takes a snapshot with fr, whose Close fails, and returns Create's error.
		run    func(t *testing.T, fx *fixture, repo *local.Repository, fr *fakeFreezer) error
		wantIs error
	}{
		{name: "data directory missing", wantIs: os.ErrNotExist, run: func(t *testing.T, fx *fixture, repo *local.Repository, fr *fakeFreezer) error {
			req := fx.request(fr)
			req.DataDir = filepath.Join(t.TempDir(), "missing")
			_, err := repo.Create(t.Context(), req)
			return err
		}},
		{name: "repository busy", wantIs: local.ErrBusy, run: func(t *testing.T, fx *fixture, repo *local.Repository, fr *fakeFreezer) error {
			// Taken while another snapshot of the repository holds its lock.
			var err error
			holder := newFreezer(testNow)
			holder.onFreeze = func() { _, err = repo.Create(t.Context(), fx.request(fr)) }
			if _, herr := repo.Create(t.Context(), fx.request(holder)); herr != nil {
				t.Fatalf("the snapshot holding the lock: %v", herr)
			}
			return err
		}},
		{name: "freeze fails", wantIs: errFreeze, run: func(t *testing.T, fx *fixture, repo *local.Repository, fr *fakeFreezer) error {
			fr.freezeErr = errFreeze
			_, err := repo.Create(t.Context(), fx.request(fr))
			return err
		}},
		{name: "thaw fails", wantIs: errThaw, run: func(t *testing.T, fx *fixture, repo *local.Repository, fr *fakeFreezer) error {
			fr.thawErr = errThaw
			_, err := repo.Create(t.Context(), fx.request(fr))
			return err
		}},
		{name: "cancelled in backup mode", wantIs: context.Canceled, run: func(t *testing.T, fx *fixture, repo *local.Repository, fr *fakeFreezer) error {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			fr.onFreeze = cancel
			_, err := repo.Create(ctx, fx.request(fr))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			repo := newRepo(t)
			fr := newFreezer(testNow)
			fr.closeErr = errRelease
			err := tt.run(t, fx, repo, fr)
			if !errors.Is(err, tt.wantIs) || !errors.Is(err, errRelease) {
				t.Fatalf("error %v, want both %v and the failed release %v", err, tt.wantIs, errRelease)
			}
			if _, _, c := fr.calls(); c < 1 {
				t.Error("the freezer was never closed")
			}
			fr.mu.Lock()
			defer fr.mu.Unlock()
			if fr.closeCtxErr != nil {
				t.Errorf("closed with a context already done (%v): an interrupted snapshot would not release", fr.closeCtxErr)
			}
		})
	}
}
