package harness

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const chromiumHow = "run 'make setup' as root, or apt-get install -y --no-install-recommends chromium fonts-dejavu-core"

var chromiumVersionRe = regexp.MustCompile(`Chromium (\S+)`)

var chromiumVersion = sync.OnceValues(func() (string, error) {
	path, err := findBinary("chromium")
	if err != nil {
		return "", err
	}
	out, err := commandOutput(path, "--version")
	if err != nil {
		return "", fmt.Errorf("while running chromium --version: %w", err)
	}
	// "Chromium 156.0.8078.108 built on Debian GNU/Linux 12 (bookworm)", after whatever
	// Debian's wrapper script prints first.
	if m := chromiumVersionRe.FindStringSubmatch(out); m != nil {
		return m[1], nil
	}
	return "unknown", nil
})

// Chromium returns the path of Debian's chromium (/usr/bin/chromium), or calls Missing.
func Chromium(t testing.TB) string {
	t.Helper()
	path, err := findBinary("chromium")
	if err != nil {
		Missing(t, "chromium", "chromium not found", chromiumHow)
	}
	return path
}

// RunChromium runs headless Chromium once with a throwaway profile and the flags that keep it
// from reaching the network on its own (updates, field trials, first-run pages), followed by
// args (--dump-dom URL, --screenshot=FILE URL, ...). It returns standard output (the DOM for
// --dump-dom); standard error, where Chromium logs its noise, is in the error when it fails.
// It calls Missing when chromium is not installed.
func RunChromium(t testing.TB, args ...string) (stdout string, err error) {
	t.Helper()
	path := Chromium(t)
	flags := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--user-data-dir=" + t.TempDir(),
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), path, append(flags, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Chromium's helper processes may hold the pipes after the browser is killed.
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	if v, err := chromiumVersion(); err == nil {
		logComponent(t, "chromium", v, fmt.Sprintf("headless, %s in %s", strings.Join(args[:min(len(args), 1)], " "), time.Since(start).Round(time.Millisecond)))
	}
	if runErr != nil {
		return out.String(), fmt.Errorf("while running chromium %s: %w\n%s", strings.Join(args, " "), runErr, errOut.String())
	}
	return out.String(), nil
}
