package audit

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileState(t *testing.T) {
	hist := filepath.Join(t.TempDir(), "history")
	dir := StateDirFor(hist)
	if dir != filepath.Join(filepath.Dir(hist), "audit-state") {
		t.Errorf("state dir %s, want audit-state next to %s", dir, hist)
	}
	fs := NewFileState(dir)
	if s, err := fs.LoadWAL(t.Context(), "orders"); s != nil || err != nil {
		t.Fatalf("first load = %+v, %v; want nothing", s, err)
	}
	want := WALSample{At: t0, ArchivedCount: 7, FailedCount: 2, StatsReset: &t0}
	if err := fs.SaveWAL(t.Context(), "orders", want); err != nil {
		t.Fatal(err)
	}
	got, err := fs.LoadWAL(t.Context(), "orders")
	if err != nil || got == nil || got.ArchivedCount != 7 || got.FailedCount != 2 || !got.At.Equal(t0) || got.StatsReset == nil {
		t.Errorf("loaded %+v, %v; want %+v", got, err, want)
	}
	if other, _ := fs.LoadWAL(t.Context(), "billing"); other != nil {
		t.Errorf("another target's state = %+v", other)
	}
}

// Issue 17 item 7: an unset variable is named, unless the "name" is a credential itself.
func TestLookupEnvNeverEchoesACredential(t *testing.T) {
	tests := []struct {
		name, value string
		shown       bool
	}{
		{"FD_UNSET_SECRET_VAR", "", true},
		{"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "", false},
		{"AKIAIOSFODNN7EXAMPLE", "", false},
		{"wJalr/XUtnFEMI+K7MDENG", "", false},
	}
	for _, tt := range tests {
		_, err := lookupEnv(tt.name, "secretAccessKeyEnv")
		if !errors.Is(err, ErrCredentials) {
			t.Fatalf("%s: err = %v", tt.name, err)
		}
		if strings.Contains(err.Error(), tt.name) != tt.shown {
			t.Errorf("%s: %v (shown %v, want %v)", tt.name, err, !tt.shown, tt.shown)
		}
	}
}
