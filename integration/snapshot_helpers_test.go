package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeCSIController plays the CSI snapshot controller: it sets status through the status
// subresource as external-snapshotter would, cutting cutDelay after it first sees a
// VolumeSnapshot and making it ready readyDelay after that. onCut runs just before a cut is
// reported (the database is still frozen then).
type fakeCSIController struct {
	client               snapshotclient.Interface
	namespace            string
	cutDelay, readyDelay time.Duration
	// errMsg, when set, is reported as status.error instead of a cut.
	errMsg string
	// never leaves cut snapshots not ready.
	never bool
	onCut func(vs *snapshotv1.VolumeSnapshot)

	mu    sync.Mutex
	cutAt map[string]time.Time
	cuts  atomic.Int32
}

func (c *fakeCSIController) run(ctx context.Context, t testing.TB) {
	c.cutAt = map[string]time.Time{}
	seen := map[string]time.Time{}
	for ctx.Err() == nil {
		l, err := c.client.SnapshotV1().VolumeSnapshots(c.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		for i := range l.Items {
			vs := &l.Items[i]
			first, ok := seen[vs.Name]
			if !ok {
				seen[vs.Name] = time.Now()
				continue
			}
			st := vs.Status
			if st == nil {
				st = &snapshotv1.VolumeSnapshotStatus{}
			}
			changed := false
			switch {
			case c.errMsg != "" && st.Error == nil && time.Since(first) >= c.cutDelay:
				now := metav1.Now()
				st.Error = &snapshotv1.VolumeSnapshotError{Time: &now, Message: &c.errMsg}
				changed = true
			case c.errMsg == "" && st.CreationTime == nil && time.Since(first) >= c.cutDelay:
				if c.onCut != nil {
					c.onCut(vs)
				}
				now := metav1.Now()
				st.CreationTime = &now
				st.BoundVolumeSnapshotContentName = new("snapcontent-" + string(vs.UID))
				c.mu.Lock()
				c.cutAt[vs.Name] = time.Now()
				c.mu.Unlock()
				c.cuts.Add(1)
				changed = true
			case c.errMsg == "" && !c.never && st.CreationTime != nil && st.ReadyToUse == nil && time.Since(first) >= c.cutDelay+c.readyDelay:
				st.ReadyToUse = new(true)
				q := resource.MustParse("8Gi")
				st.RestoreSize = &q
				changed = true
			}
			if changed {
				vs.Status = st
				if _, err := c.client.SnapshotV1().VolumeSnapshots(c.namespace).UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
					t.Logf("fake CSI controller: status update of %s: %v", vs.Name, err)
				}
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func (c *fakeCSIController) cutTime(name string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAt[name]
}

// startController runs c until the test ends.
func startController(t *testing.T, c *fakeCSIController) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx, t) }()
	t.Cleanup(func() { cancel(); <-done })
}
