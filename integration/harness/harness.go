// Package harness starts the real components firedrill's tests talk to (PostgreSQL, MariaDB,
// Redis, S3, the Kubernetes API, Docker, promtool). Every starter takes a *testing.T, uses a
// temporary directory and a free port on 127.0.0.1, and registers its cleanup with t.Cleanup, so a
// test that fails or panics still stops what it started.
//
// Components that are missing are skipped with a message naming what is missing and how to get
// it, unless FIREDRILL_REQUIRE_INTEGRATION=1 (set by .ci/run), in which case the test fails: CI can
// never pass by skipping. Integration tests skip themselves under `go test -short`.
package harness

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// RequireEnv is the environment variable that turns a missing component into a test failure.
const RequireEnv = "FIREDRILL_REQUIRE_INTEGRATION"

// CacheDir is where integration/setup/setup.sh caches binaries and images, keyed by version.
func CacheDir() string {
	if d := os.Getenv("FIREDRILL_CACHE_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "firedrill")
	}
	return filepath.Join(os.TempDir(), "firedrill-cache")
}

// Integration skips t under -short: integration tests start real servers.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
}

// Missing reports that a component the test needs is not available. It skips the test, or fails
// it when FIREDRILL_REQUIRE_INTEGRATION=1. how says how to get the component.
func Missing(t testing.TB, component, why, how string) {
	t.Helper()
	msg := component + " is not available (" + why + "); " + how
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s [%s=1: missing components fail the run]", msg, RequireEnv)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("while finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
