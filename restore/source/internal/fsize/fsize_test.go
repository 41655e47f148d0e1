package fsize

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTreeCountsRegularFilesOnly(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, n := range map[string]int{"x": 10, "a/y": 20, "a/b/z": 30} {
		if err := os.WriteFile(filepath.Join(dir, p), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "x"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got := Tree(dir); got != 60 {
		t.Fatalf("Tree = %d, want 60 (symlinks not followed)", got)
	}
	if got := Tree(filepath.Join(dir, "missing")); got != 0 {
		t.Fatalf("Tree(missing) = %d", got)
	}
}
