package csi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// A failed release after a failed snapshot (a thaw, pg_backup_stop or UNLOCK that failed) reaches
// the caller joined with the snapshot's own failure, and the release runs on a context that was
// not cancelled, so an interrupted snapshot still releases the database.
func TestCreateFailureJoinsFailedRelease(t *testing.T) {
	boom := errors.New("etcdserver: request timed out")
	errRelease := errors.New("UNLOCK TABLES: invalid connection")
	cases := []struct {
		name   string
		react  func(cs *fake.Clientset, cancel context.CancelFunc)
		ctrl   *controller
		noVols bool
		want   error
	}{
		{name: "no volume", noVols: true, ctrl: &controller{}, want: nil},
		{name: "create refused", ctrl: &controller{}, want: boom, react: func(cs *fake.Clientset, _ context.CancelFunc) {
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}},
		{name: "never ready", ctrl: &controller{cutDelay: 5 * time.Millisecond, never: true}, want: ErrNotReady},
		{name: "cancelled while waiting for the cut", ctrl: &controller{cutDelay: time.Hour}, want: context.Canceled, react: func(cs *fake.Clientset, cancel context.CancelFunc) {
			cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				cancel()
				return false, nil, nil
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			clk := newClock()
			if tc.react != nil {
				tc.react(cs, cancel)
			}
			tc.ctrl.install(cs, clk)
			f := &fakeFreezer{clock: clk, closeErr: errRelease}
			req := request(f)
			if tc.noVols {
				req.Volumes = nil
			}
			d := newDriver(cs, clk)
			d.ReadyTimeout = 50 * time.Millisecond
			_, err := d.Create(ctx, req)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !errors.Is(err, errRelease) {
				t.Fatalf("err = %v, want both %v and the failed release %v", err, tc.want, errRelease)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.closeCtxErr != nil {
				t.Errorf("closed with a context already done (%v): an interrupted snapshot would not release", f.closeCtxErr)
			}
		})
	}
}

// Every member's failed release is reported, with the member's name, next to the group's failure.
func TestGroupCreateFailureJoinsFailedReleases(t *testing.T) {
	boom := errors.New("etcdserver: request timed out")
	errA := errors.New("pg_backup_stop: connection reset by peer")
	errB := errors.New("UNLOCK TABLES: invalid connection")
	cs, kube := groupCluster(t, true, groupClass("group", testDriver, false))
	cs.PrependReactor("create", "volumegroupsnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, b := &fakeFreezer{closeErr: errA}, &fakeFreezer{closeErr: errB}
	_, err := groupDriver(cs, kube).Create(ctx, groupRequest(a, b))
	for _, want := range []error{boom, errA, errB} {
		if !errors.Is(err, want) {
			t.Errorf("err = %v, want it to carry %v", err, want)
		}
	}
	for i, f := range []*fakeFreezer{a, b} {
		if f.closeCtxErr != nil {
			t.Errorf("member %d closed with a context already done (%v)", i, f.closeCtxErr)
		}
	}
}
