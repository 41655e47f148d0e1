package take

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/firedrill/firedrill/restore/engine"
	_ "github.com/firedrill/firedrill/restore/engine/builtin" // the engines firedrill ships
	"github.com/firedrill/firedrill/restore/paths"
)

// opened is a connected freezer with the facts it read and the copy rule for the local driver.
type opened struct {
	freezer engine.Freezer
	info    map[string]string
	rule    engine.CopyRule
	// backup is the engine's own copy (engine.Opened.Backup), used instead of a file copy.
	backup func(ctx context.Context, dest string) (*engine.Frozen, error)
}

// open connects to the target's database and builds its freezer, by its engine's registry entry. The connection is the
// freezer's: closing the freezer closes it.
func open(ctx context.Context, o *Options) (*opened, error) {
	if o.CSI == nil && o.DataDir != "" {
		// Once, up front: the copy walks the data directory from its real path (a walk does
		// not enter a symlinked root), and every comparison below uses it.
		if real, err := filepath.EvalSymlinks(o.DataDir); err == nil {
			o.DataDir = real
		}
		if err := repositoryOutside(o, "the data directory", o.DataDir); err != nil {
			return nil, err
		}
	}
	if o.Freezer != nil {
		return &opened{freezer: o.Freezer, info: o.Attributes, rule: o.Rule}, nil
	}
	spec, ok := engine.Lookup(o.Engine)
	if !ok {
		return nil, fmt.Errorf("%w: engine %q", ErrUnsupported, o.Engine)
	}
	req := engine.OpenRequest{
		Target: o.Target, Mode: o.Mode, DSN: o.DSN, DataDir: o.DataDir, Volumes: o.CSI != nil,
		MaxFreeze: o.MaxFreeze, Fast: o.Fast, Now: o.Now,
	}
	if o.CSI == nil {
		req.Outside = func(what, dir string) error { return repositoryOutside(o, what, dir) }
	}
	op, err := spec.Open(ctx, req)
	if err != nil {
		return nil, err
	}
	o2 := &opened{freezer: op.Freezer, info: op.Info, rule: op.Rule}
	if o.CSI == nil {
		o2.backup = op.Backup
	}
	return o2, nil
}

// repositoryOutside refuses a local repository inside dir (a directory the snapshot copies):
// the copy would copy the repository into itself.
func repositoryOutside(o *Options, what, dir string) error {
	if o.Repository == nil || dir == "" {
		return nil
	}
	repo, d := paths.Real(o.Repository.Dir), paths.Real(dir)
	if repo == d || strings.HasPrefix(repo, strings.TrimSuffix(d, "/")+"/") {
		return fmt.Errorf("%w: target %s's snapshot repository %s is inside %s %s, which the snapshot copies: it would copy the repository into itself; move snapshot.local.repository outside the data directory, its tablespaces and its WAL directory", ErrMismatch, o.Target, o.Repository.Dir, what, dir)
	}
	return nil
}
