package docker

import (
	"context"
	"errors"
	"fmt"
	"os"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// StopLeftover removes the containers a dead drill started on scratchDir (found by label).
func (r *Runtime) StopLeftover(ctx context.Context, scratchDir string) ([]string, error) {
	return r.removeWhere(ctx, client.Filters{}.Add("label", LabelManagedBy+"="+ManagedByValue, LabelScratchDir+"="+scratchDir), nil)
}

// SweepTarget removes target's containers whose scratch directory is gone: what a killed
// firedrill left after its directory was removed.
func (r *Runtime) SweepTarget(ctx context.Context, target string) ([]string, error) {
	return r.removeWhere(ctx, client.Filters{}.Add("label", LabelManagedBy+"="+ManagedByValue, LabelTarget+"="+target), func(labels map[string]string) bool {
		dir := labels[LabelScratchDir]
		if dir == "" {
			return false
		}
		_, err := os.Lstat(dir)
		return os.IsNotExist(err)
	})
}

func (r *Runtime) removeWhere(ctx context.Context, f client.Filters, keep func(map[string]string) bool) ([]string, error) {
	list, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("while listing firedrill's containers: %w", err)
	}
	var removed []string
	var errs []error
	for _, c := range list.Items {
		if keep != nil && !keep(c.Labels) {
			continue
		}
		if _, err := r.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("while removing container %s: %w", short(c.ID), err))
			continue
		}
		removed = append(removed, fmt.Sprintf("container %s (drill %s)", short(c.ID), c.Labels[LabelDrillID]))
	}
	return removed, errors.Join(errs...)
}
