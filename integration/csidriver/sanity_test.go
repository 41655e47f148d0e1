package csidriver_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/firedrill/firedrill/integration/csidriver"
)

// startDriver serves a driver on a socket in a fresh directory until the test ends.
func startDriver(t *testing.T, root string) (endpoint string) {
	t.Helper()
	d, err := csidriver.New(csidriver.Options{
		Root:   root,
		NodeID: "sanity-node",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	// A short socket path: sun_path holds 108 bytes and t.TempDir() paths can be long.
	sockDir, err := os.MkdirTemp("", "csi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	endpoint = "unix://" + filepath.Join(sockDir, "csi.sock")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, endpoint) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("driver: %v", err)
		}
	})
	return endpoint
}

// TestSanity runs the CSI sanity suite (csi-test v5 pkg/sanity) against the driver. Bind mounts
// need root (CAP_SYS_ADMIN), so without it the whole suite is skipped rather than half-run.
func TestSanity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the CSI sanity suite publishes volumes with bind mounts, which need root; run as root")
	}
	tmp := t.TempDir()
	cfg := sanity.NewTestConfig()
	cfg.Address = startDriver(t, filepath.Join(tmp, "root"))
	cfg.TargetPath = filepath.Join(tmp, "target")
	cfg.StagingPath = filepath.Join(tmp, "staging")
	cfg.TestVolumeSize = 64 << 20
	sanity.Test(t, cfg)
}
