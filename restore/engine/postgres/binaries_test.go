package postgres

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMajorOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"15.18", "15"},
		{"15", "15"},
		{"10.1", "10"},
		{"17.0", "17"},
		{"9.6.3", "9.6"},
		{"17beta1", "17"},
		{"18devel", "18"},
		{"9.6", "9.6"},
		{"8.4.22", "8.4"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := majorOf(tt.in); got != tt.want {
				t.Errorf("majorOf(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadPGVersion(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadPGVersion(dir); err == nil {
		t.Error("ReadPGVersion of a directory without PG_VERSION succeeded")
	}
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPGVersion(dir); err != nil || got != "15" {
		t.Errorf("ReadPGVersion = %q, %v; want 15", got, err)
	}
}
