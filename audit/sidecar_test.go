package audit

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 17 item 2: sidecars and other files are never backups; without match, a source holds
// the common dump suffixes.
func TestMatches(t *testing.T) {
	tests := []struct {
		glob, rel string
		want      bool
	}{
		{"", "orders-2026-11-20.dump", true},
		{"", "daily/orders.sql.gz", true},
		{"", "orders.sql.zst", true},
		{"", "orders.tar", true},
		{"", "orders.pgdump", true},
		{"", "orders.backup", true},
		{"", "README", false},
		{"", "README.md", false},
		{"", "orders.dump.sha256", false},
		{"", "SHA256SUMS", false},
		{"", "manifest.json", false},
		{"", ".dump", false},
		{"*", "README", true},
		{"*", "orders.dump.sha256", false},
		{"*", "orders.dump.md5", false},
		{"*", "orders.dump.sha512", false},
		{"*", "sha256sums.asc", false},
		{"*.dump", "orders.dump", true},
		{"*.dump", "orders.dump.sha256", false},
		{"orders-*", "orders-1.custom", true},
	}
	for _, tt := range tests {
		t.Run(tt.glob+"|"+tt.rel, func(t *testing.T) {
			if got := matches(tt.glob, tt.rel); got != tt.want {
				t.Errorf("matches(%q, %q) = %v, want %v", tt.glob, tt.rel, got, tt.want)
			}
		})
	}
}

// mapOpener serves files from a map.
type mapOpener map[string]string

func (m mapOpener) Open(_ context.Context, key string) (io.ReadCloser, error) {
	v, ok := m[key]
	if !ok {
		return nil, os.ErrNotExist
	}
	return io.NopCloser(strings.NewReader(v)), nil
}

func TestReadClaims(t *testing.T) {
	const h1 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	const h2 = "0a1f0e4b1fa1b71f1b3e1e14f1fb21b0c1f9e1f9e1f9e1f9e1f9e1f9e1f9e1f9"
	tests := []struct {
		name  string
		files mapOpener
		key   string
		want  string
	}{
		{"bare digest", mapOpener{"d/a.dump.sha256": h1 + "\n"}, "d/a.dump", h1},
		{"sha256sum format", mapOpener{"d/a.dump.sha256": h1 + "  a.dump\n"}, "d/a.dump", h1},
		{"SHA256SUMS", mapOpener{"d/SHA256SUMS": h2 + "  b.dump\n" + h1 + " *a.dump\n"}, "d/a.dump", h1},
		{"SHA256SUMS without the file", mapOpener{"d/SHA256SUMS": h2 + "  b.dump\n"}, "d/a.dump", ""},
		{"not a digest", mapOpener{"d/a.dump.sha256": "hello\n"}, "d/a.dump", ""},
		{"none", mapOpener{}, "d/a.dump", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			readClaims(t.Context(), tt.files, tt.key, got)
			if got["sha256"] != tt.want {
				t.Errorf("claims = %v, want sha256 %q", got, tt.want)
			}
		})
	}
}

// A directory's .sha256 file is a claim, not a checksum a store computed.
func TestDirectoryChecksumsAreClaims(t *testing.T) {
	dir := t.TempDir()
	const h = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	if err := os.WriteFile(filepath.Join(dir, "a.dump"), []byte("hello world\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.dump.sha256"), []byte(h+"  a.dump\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &DirSource{Dir: dir}
	b, ok, err := claimedOnly{src}.Stat(t.Context(), "a.dump")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if b.Checksums["sha256"] != "" || b.Claimed["sha256"] != h {
		t.Errorf("checksums %v, claimed %v; want the sidecar's digest as a claim only", b.Checksums, b.Claimed)
	}
	var keys []string
	if err := src.Scan(t.Context(), func(b Backup) error { keys = append(keys, b.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a.dump" {
		t.Errorf("listed %v, want only a.dump", keys)
	}
}
