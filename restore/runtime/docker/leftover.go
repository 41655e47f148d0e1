package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/firedrill/firedrill/restore/drill"
)

// Runtime removes what outlives its scratch directory.
var _ drill.TargetSweeper = (*Runtime)(nil)

// StopLeftover removes the containers a dead drill started on scratchDir (found by label).
func (r *Runtime) StopLeftover(ctx context.Context, scratchDir string) ([]string, error) {
	return r.removeWhere(ctx, client.Filters{}.Add("label", LabelManagedBy+"="+ManagedByValue, LabelScratchDir+"="+scratchDir), nil, false)
}

// SweepTarget removes target's containers whose scratch directory is gone: what a killed
// firedrill left after its directory was removed. A kept drill's container goes with its
// directory (StopLeftover), so o.IncludeKept needs nothing here; o.OlderThan leaves younger
// containers alone and o.DryRun only lists them.
func (r *Runtime) SweepTarget(ctx context.Context, target string, o drill.GCOptions) ([]string, error) {
	now := time.Now()
	return r.removeWhere(ctx, client.Filters{}.Add("label", LabelManagedBy+"="+ManagedByValue, LabelTarget+"="+target), func(c container.Summary) bool {
		return orphaned(c, o.OlderThan, now)
	}, o.DryRun)
}

// orphaned says whether c is a container whose scratch directory is gone, created at least
// olderThan before now.
func orphaned(c container.Summary, olderThan time.Duration, now time.Time) bool {
	dir := c.Labels[LabelScratchDir]
	if dir == "" {
		return false
	}
	if olderThan > 0 && now.Sub(time.Unix(c.Created, 0)) < olderThan {
		return false
	}
	_, err := os.Lstat(dir)
	return os.IsNotExist(err)
}

// removeWhere removes (dryRun: lists) firedrill's containers matching f and, if given, pick.
func (r *Runtime) removeWhere(ctx context.Context, f client.Filters, pick func(container.Summary) bool, dryRun bool) ([]string, error) {
	list, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("while listing firedrill's containers: %w", err)
	}
	var removed []string
	var errs []error
	for _, c := range list.Items {
		if pick != nil && !pick(c) {
			continue
		}
		if !dryRun {
			if _, err := r.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("while removing container %s: %w", short(c.ID), err))
				continue
			}
		}
		removed = append(removed, fmt.Sprintf("container %s (drill %s)", short(c.ID), c.Labels[LabelDrillID]))
	}
	return removed, errors.Join(errs...)
}
