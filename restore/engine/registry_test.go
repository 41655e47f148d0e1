package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/restore/engine"
	_ "github.com/firedrill/firedrill/restore/engine/builtin"
)

func TestBuiltinRegistry(t *testing.T) {
	if got, want := engine.Names(), []string{"postgres", "mariadb", "mysql", "redis", "mongodb"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v (the order help and errors list them)", got, want)
	}
	if got := engine.AllModes(); !slices.Equal(got, []string{"online", "crash-consistent"}) {
		t.Errorf("AllModes() = %v", got)
	}
	for _, tc := range []struct {
		name, canonical          string
		backupOnline, walArchive bool
	}{
		{"postgres", "postgres", true, true},
		{"mysql", "mariadb", false, false},
		{"mariadb", "mariadb", false, false},
		{"redis", "redis", false, false},
		{"mongodb", "mongodb", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := engine.Lookup(tc.name)
			if !ok || s.Name != tc.canonical {
				t.Fatalf("Lookup(%s) = %v, %v", tc.name, s, ok)
			}
			if engine.InBackupMode(tc.name, "online") != tc.backupOnline || engine.InBackupMode(tc.name, "crash-consistent") {
				t.Errorf("InBackupMode wrong for %s", tc.name)
			}
			if s.WALArchiving != tc.walArchive {
				t.Errorf("WALArchiving = %v", s.WALArchiving)
			}
			if s.ParseDSN("\x00not a dsn ::: %zz") == nil && tc.name != "mongodb" {
				t.Errorf("ParseDSN accepted garbage")
			}
			for d, modes := range s.Drivers {
				if _, refused := s.Refusals[d]; refused && len(modes) > 0 {
					t.Errorf("driver %s both takes %v and refuses %s", d, modes, tc.name)
				}
			}
		})
	}
	if _, ok := engine.Lookup("oracle"); ok || engine.InBackupMode("oracle", "online") {
		t.Error("oracle is not an engine")
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	open := func(context.Context, engine.OpenRequest) (*engine.Opened, error) { return nil, nil }
	parse := func(string) error { return nil }
	for _, tc := range []struct {
		name string
		spec engine.Spec
		want string
	}{
		{"taken name", engine.Spec{Name: "postgres", Modes: []string{"online"}, ParseDSN: parse, Open: open}, "registered twice"},
		{"taken alias", engine.Spec{Name: "x1", Aliases: []string{"mysql"}, Modes: []string{"online"}, ParseDSN: parse, Open: open}, "registered twice"},
		{"driver mode not a mode", engine.Spec{Name: "x2", Modes: []string{"online"}, Drivers: map[string][]string{"csi": {"hot"}}, ParseDSN: parse, Open: open}, "not among its modes"},
		{"no Open", engine.Spec{Name: "x3", Modes: []string{"online"}, ParseDSN: parse}, "needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Errorf("panic %v, want %q", r, tc.want)
				}
			}()
			engine.Register(tc.spec)
		})
	}
	if _, ok := engine.Lookup("x1"); ok {
		t.Error("a refused registration left x1 registered")
	}
}

type releaser struct{ err error }

func (r releaser) Close(context.Context) error { return r.err }

func TestCloseAfterJoinsFailedRelease(t *testing.T) {
	cause := errors.New("server info: timeout")
	for _, tc := range []struct {
		name    string
		release error
		want    []string
	}{
		{"release ok", nil, []string{"server info: timeout"}},
		{"release fails", errors.New("pg_backup_stop failed"), []string{"server info: timeout", "may still be frozen or in backup mode", "pg_backup_stop failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := engine.CloseAfter(t.Context(), releaser{tc.release}, cause)
			if !errors.Is(err, cause) {
				t.Fatalf("err = %v, lost the cause", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q", err, w)
				}
			}
			if tc.release != nil && !errors.Is(err, tc.release) {
				t.Errorf("err = %v, lost the failed release", err)
			}
		})
	}
}
