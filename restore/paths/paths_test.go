package paths

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		p, dir string
		want   bool
	}{
		{"/a/b", "/a", true},
		{"/a", "/a", true},
		{"/ab", "/a", false},
		{"/a", "/a/b", false},
		{"/anything", "/", true},
		{"/", "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.p+" in "+tt.dir, func(t *testing.T) {
			if got := Within(tt.p, tt.dir); got != tt.want {
				t.Errorf("Within(%q, %q) = %v, want %v", tt.p, tt.dir, got, tt.want)
			}
		})
	}
}

func TestReal(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, in, want string }{
		{"existing", data, data},
		{"through a link", link + "/repo", data + "/repo"},
		{"not yet created, under a link", link + "/a/b/../c", data + "/a/c"},
		{"nothing exists", "/nonexistent-firedrill/x", "/nonexistent-firedrill/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Real(tt.in); got != tt.want {
				t.Errorf("Real(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
