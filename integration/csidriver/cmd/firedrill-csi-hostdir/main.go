// Command firedrill-csi-hostdir serves the directory-backed test CSI driver of
// github.com/firedrill/firedrill/integration/csidriver on a unix socket, for a test cluster's
// kubelet (next to a node registrar) or for csi-sanity.
//
// Exit status: 0 after SIGINT/SIGTERM, 2 for bad flags, 3 when the driver cannot start or serve.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/firedrill/firedrill/integration/csidriver"
)

type options struct {
	endpoint   string
	root       string
	name       string
	nodeID     string
	maxVolumes int64
	debug      bool
	// registry is the kubelet's plugin registry directory; when set, the driver also serves
	// the registration socket there, as node-driver-registrar would.
	registry string
}

func main() {
	var o options
	fs := flag.NewFlagSet("firedrill-csi-hostdir", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix socket)")
	fs.StringVar(&o.root, "root", "/var/lib/firedrill-csi-hostdir", "directory holding volumes, snapshots and state.json")
	fs.StringVar(&o.name, "drivername", csidriver.DefaultName, "CSI driver name")
	fs.StringVar(&o.nodeID, "nodeid", "", "node ID (default: the host name)")
	fs.Int64Var(&o.maxVolumes, "max-volumes-per-node", 0, "reported by NodeGetInfo; 0 means no limit")
	fs.BoolVar(&o.debug, "debug", false, "log every failed CSI call")
	fs.StringVar(&o.registry, "kubelet-registry", "", "register with the kubelet through this plugin registry directory (e.g. /var/lib/kubelet/plugins_registry); empty: do not register")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "firedrill-csi-hostdir:", err)
		stop()
		os.Exit(3)
	}
}

func run(ctx context.Context, o options) error {
	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	d, err := csidriver.New(csidriver.Options{
		Root: o.root, Name: o.name, NodeID: o.nodeID, MaxVolumesPerNode: o.maxVolumes, Logger: log,
	})
	if err != nil {
		return err
	}
	if o.registry == "" {
		return d.Run(ctx, o.endpoint)
	}
	path, err := csidriver.SocketPath(o.endpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := &csidriver.Registrar{Name: o.name, Endpoint: path}
	regErr := make(chan error, 1)
	go func() {
		err := reg.Serve(ctx, o.registry)
		cancel() // a registrar that stops takes the driver down with it: the kubelet would lose it
		regErr <- err
	}()
	err = d.Run(ctx, o.endpoint)
	cancel()
	if rerr := <-regErr; err == nil {
		err = rerr
	}
	return err
}
