package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// modeProblems parses one target of eng with driver and mode and returns the problems
// validation reports about the engine, its mode or its driver.
func modeProblems(t *testing.T, eng, dsn, driver, mode string) []string {
	t.Helper()
	snap := "      local: {dataDir: /var/lib/db, repository: /backups/db}\n"
	if driver == "csi" {
		snap = "      csi: {namespace: db, pvc: data, className: fast}\n"
	}
	doc := fmt.Sprintf("targets:\n  - name: shop\n    engine: %s\n    connection: {dsn: %q}\n    snapshot:\n      driver: %s\n      mode: %s\n%s", eng, dsn, driver, mode, snap)
	_, err := Parse("/etc/firedrill.yaml", []byte(doc))
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("%s/%s/%s: %v", eng, driver, mode, err)
	}
	var out []string
	for _, e := range es {
		switch e.Key {
		case "targets[0].engine", "targets[0].snapshot.mode", "targets[0].snapshot.driver", "targets[0].connection.dsn":
			out = append(out, e.Key+": "+e.Msg)
		default:
			t.Errorf("%s/%s/%s: unexpected problem %s: %s", eng, driver, mode, e.Key, e.Msg)
		}
	}
	return out
}

// The engine registry is the one source of which driver takes which mode of which engine:
// validation accepts exactly what the snapshot core (take.Supported) accepts, and both
// exactly what the engine's entry says.
func TestEngineRegistryAgreesWithValidationAndTake(t *testing.T) {
	if len(engine.Specs()) < 4 {
		t.Fatalf("registered engines %v: the builtin ones are missing", engine.Names())
	}
	for _, spec := range engine.Specs() {
		for _, name := range append([]string{spec.Name}, spec.Aliases...) {
			dsn, ok := testDSNs[name]
			if !ok {
				t.Fatalf("no test DSN for engine %s: add one to testDSNs", name)
			}
			for _, driver := range supportedDrivers {
				for _, mode := range engine.AllModes() {
					t.Run(name+"/"+driver+"/"+mode, func(t *testing.T) {
						want := spec.Takes(driver, mode)
						problems := modeProblems(t, name, dsn, driver, mode)
						if valid := len(problems) == 0; valid != want {
							t.Errorf("validation accepts=%v, registry takes=%v: %v", valid, want, problems)
						}
						err := take.Supported(name, mode, driver)
						if (err == nil) != want {
							t.Errorf("take.Supported = %v, registry takes=%v", err, want)
						}
						if err != nil && !errors.Is(err, take.ErrUnsupported) {
							t.Errorf("take.Supported = %v, want ErrUnsupported", err)
						}
					})
				}
			}
		}
	}
}

// A fake engine, added by registration alone, is accepted by validation (name, modes per
// driver, its own DSN check) and by the snapshot core, with no other edit.
func TestFakeEngineByRegistration(t *testing.T) {
	engine.Register(engine.Spec{
		Name: "fakedb", Aliases: []string{"fake"},
		Modes:    []string{"online", "crash-consistent"},
		ModeHelp: "use online",
		Drivers:  map[string][]string{"local": {"online"}, "csi": {"crash-consistent"}},
		ParseDSN: func(dsn string) error {
			if !strings.HasPrefix(dsn, "fake://") {
				return errors.New("want fake://")
			}
			return nil
		},
		Open: func(context.Context, engine.OpenRequest) (*engine.Opened, error) {
			return nil, errors.New("not in this test")
		},
	})
	t.Cleanup(func() { engine.Unregister("fakedb") })
	if !slices.Contains(engine.Names(), "fake") {
		t.Fatalf("Names() = %v, want the alias fake", engine.Names())
	}
	for _, tc := range []struct {
		name, eng, dsn, driver, mode string
		want                         string // a problem's substring; empty: valid
	}{
		{"online on local", "fakedb", "fake://x", "local", "online", ""},
		{"alias", "fake", "fake://x", "local", "online", ""},
		{"crash-consistent on csi", "fakedb", "fake://x", "csi", "crash-consistent", ""},
		{"online on csi is not in its entry", "fakedb", "fake://x", "csi", "online", "the csi driver cannot take online snapshots of engine fakedb (it takes: crash-consistent)"},
		{"local refuses crash-consistent", "fakedb", "fake://x", "local", "crash-consistent", "the local driver refuses crash-consistent mode"},
		{"its own DSN check", "fakedb", "postgres://x", "local", "online", "targets[0].connection.dsn: malformed DSN: want fake://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := modeProblems(t, tc.eng, tc.dsn, tc.driver, tc.mode)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems %v, want none", problems)
			case tc.want != "" && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }):
				t.Errorf("problems %v, want one with %q", problems, tc.want)
			}
			if err := take.Supported(tc.eng, tc.mode, tc.driver); (err == nil) != (tc.want == "" || strings.Contains(tc.want, "DSN")) {
				t.Errorf("take.Supported = %v", err)
			}
		})
	}
	engine.Unregister("fakedb")
	if problems := modeProblems(t, "fakedb", "fake://x", "local", "online"); len(problems) == 0 {
		t.Errorf("unregistered fakedb still accepted")
	}
}
