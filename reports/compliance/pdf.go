package compliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoChromium is returned by PDF when no Chromium is installed.
var ErrNoChromium = errors.New("chromium not found: install Debian's chromium package (apt-get install --no-install-recommends chromium fonts-dejavu-core) to render PDF, or use --format html and print it")

// chromiumNames are where Chromium is looked for: $PATH first, then Debian's and others' paths.
var chromiumNames = []string{"chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium", "/snap/bin/chromium"}

// FindChromium returns the path of a Chromium binary, or ErrNoChromium.
func FindChromium() (string, error) {
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// pdfTimeout bounds one Chromium run: a report is a page of static HTML.
const pdfTimeout = 2 * time.Minute

// PDF renders the report's HTML to PDF with headless Chromium and writes it to w. Chromium runs
// with a throwaway profile and no network (a dead proxy, no name resolution): the page needs none.
func PDF(ctx context.Context, w io.Writer, r *Report) error {
	bin, err := FindChromium()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "firedrill-report-")
	if err != nil {
		return fmt.Errorf("while making a directory for the PDF: %w", err)
	}
	defer os.RemoveAll(dir)
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		return err
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("while writing the report's HTML for Chromium: %w", err)
	}
	out := filepath.Join(dir, "report.pdf")
	ctx, cancel := context.WithTimeout(ctx, pdfTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-pdf-header-footer",
		"--print-to-pdf="+out, "file://"+page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Chromium's helpers may hold the pipes a while after it exits.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("while printing the report to PDF with %s: %w\n%s", bin, err, lastLines(stderr.String(), 10))
	}
	f, err := os.Open(out)
	if err != nil {
		return fmt.Errorf("while reading the PDF Chromium wrote (%s): %w", lastLines(stderr.String(), 10), err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("while writing the PDF: %w", err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
