package csidriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultName is the CSI driver name the StorageClass and VolumeSnapshotClass under deploy/ use.
const DefaultName = "hostdir.csi.firedrill.io"

// Version is reported by GetPluginInfo.
const Version = "0.1.0"

// Defaults written down in one place.
const (
	// DefaultCapacity is recorded for a volume whose request names no capacity.
	DefaultCapacity int64 = 1 << 30
	// DefaultMaxCapacity is the largest capacity a volume may ask for (OutOfRange above it).
	// Nothing is allocated: a directory has no size; the number only has to be plausible.
	DefaultMaxCapacity int64 = 1 << 40
)

// Options configure a Driver.
type Options struct {
	// Root holds volumes/, snapshots/ and state.json. Required.
	Root string
	// Name is the CSI driver name; DefaultName when empty.
	Name string
	// NodeID is returned by NodeGetInfo; the host name when empty.
	NodeID string
	// MaxVolumesPerNode is returned by NodeGetInfo; 0 means no limit.
	MaxVolumesPerNode int64
	// MaxCapacity bounds a volume's requested capacity; DefaultMaxCapacity when 0.
	MaxCapacity int64
	// Logger receives one line per failed call; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock for creation times; time.Now when nil.
	Now func() time.Time
}

// Driver serves the CSI Identity, Controller and Node services for directories under a root.
// One mutex serialises every call: copies can be slow, but a test driver that never races with
// itself is worth more than one that is fast.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	opts      Options
	log       *slog.Logger
	now       func() time.Time
	statePath string

	// subvolumes: the root is on btrfs, volumes are subvolumes and snapshots atomic (subvol.go).
	subvolumes bool

	mu    sync.Mutex
	state *state
}

// New prepares the root and loads the state a previous run left there.
func New(opts Options) (*Driver, error) {
	if opts.Root == "" {
		return nil, errors.New("csidriver: Options.Root is required")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("while resolving the driver root %s: %w", opts.Root, err)
	}
	opts.Root = root
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("while reading the host name for the node ID: %w", err)
		}
		opts.NodeID = host
	}
	if opts.MaxCapacity == 0 {
		opts.MaxCapacity = DefaultMaxCapacity
	}
	d := &Driver{opts: opts, log: opts.Logger, now: opts.Now, statePath: filepath.Join(root, "state.json")}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	for _, dir := range []string{root, d.volumesDir(), d.snapshotsDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("while creating %s: %w", dir, err)
		}
	}
	if d.state, err = loadState(d.statePath); err != nil {
		return nil, err
	}
	d.subvolumes = onBtrfs(root)
	return d, nil
}

func (d *Driver) volumesDir() string          { return filepath.Join(d.opts.Root, "volumes") }
func (d *Driver) snapshotsDir() string        { return filepath.Join(d.opts.Root, "snapshots") }
func (d *Driver) volumePath(id string) string { return filepath.Join(d.volumesDir(), id) }
func (d *Driver) snapshotPath(id string) string {
	return filepath.Join(d.snapshotsDir(), id)
}

// VolumePath is where the volume's data lives on the host: tests use it to look at or damage
// a volume, and SnapshotPath likewise for a snapshot.
func (d *Driver) VolumePath(id string) string { return d.volumePath(id) }

// SnapshotPath is where the snapshot's copy lives on the host.
func (d *Driver) SnapshotPath(id string) string { return d.snapshotPath(id) }

// save persists the state; callers hold d.mu. A failure is an Internal error for the caller.
func (d *Driver) save() error {
	if err := d.state.save(d.statePath); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

func newID(prefix string) (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", status.Errorf(codes.Internal, "while generating an ID: %v", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// Run serves the driver on endpoint (unix:///path, unix:/path or a plain socket path) until ctx
// ends, then stops gracefully. A stale socket file from an earlier run is removed first.
func (d *Driver) Run(ctx context.Context, endpoint string) error {
	path, err := SocketPath(endpoint)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("while removing the stale socket %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("while creating the socket directory: %w", err)
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("while listening on %s: %w", path, err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(d.logErrors))
	csi.RegisterIdentityServer(srv, d)
	csi.RegisterControllerServer(srv, d)
	csi.RegisterNodeServer(srv, d)

	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		srv.GracefulStop()
	}()
	d.log.Info("CSI driver serving", "name", d.opts.Name, "endpoint", path, "root", d.opts.Root, "atomicSnapshots", d.subvolumes)
	err = srv.Serve(lis)
	<-done
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("while serving CSI on %s: %w", path, err)
	}
	return nil
}

// SocketPath is the file path of a unix:// CSI endpoint.
func SocketPath(endpoint string) (string, error) {
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		endpoint = strings.TrimPrefix(endpoint, "unix://")
	case strings.HasPrefix(endpoint, "unix:"):
		endpoint = strings.TrimPrefix(endpoint, "unix:")
	case strings.Contains(endpoint, "://"):
		return "", fmt.Errorf("csidriver: endpoint %q: only unix sockets are served", endpoint)
	}
	if endpoint == "" {
		return "", errors.New("csidriver: empty endpoint")
	}
	return endpoint, nil
}

func (d *Driver) logErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		d.log.Debug("CSI call failed", "method", info.FullMethod, "code", status.Code(err).String(), "error", err)
	}
	return resp, err
}
