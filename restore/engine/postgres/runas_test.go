package postgres

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestResolveRunAsNamedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a named runAsUser is looked up only when firedrill runs as root")
	}
	tests := []struct {
		name, user string
		wantErr    error
		wantMsg    string
	}{
		{"a user that does not exist", "nosuchuser-firedrill", ErrNoSuchUser,
			`no such user: runAsUser "nosuchuser-firedrill" does not exist on this machine: create it (useradd --system nosuchuser-firedrill) or set restore.local.runAsUser to an existing unprivileged user`},
		{"root", "root", nil, `runAsUser "root" is root; PostgreSQL refuses to run as root`},
		{"an unprivileged user", "nobody", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ResolveRunAs(tt.user)
			if tt.wantMsg == "" {
				if err != nil || r.Name != tt.user || r.IsCurrent() {
					t.Fatalf("ResolveRunAs(%q) = %+v, %v", tt.user, r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ResolveRunAs(%q) error = %v, want it to contain %q", tt.user, err, tt.wantMsg)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("errors.Is(err, %v) = false: %v", tt.wantErr, err)
			}
			if strings.Contains(err.Error(), "no unprivileged user") {
				t.Errorf("the error says the setting is missing although it is set: %v", err)
			}
		})
	}
}
