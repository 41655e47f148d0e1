package mongodb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
)

// fakeProc is a launched process; with addrErr set it is Reachable and fails to start.
type fakeProc struct {
	removed bool
	addrErr error
}

func (p *fakeProc) Stop(time.Duration) (bool, error)              { return true, nil }
func (p *fakeProc) Running() bool                                 { return false }
func (p *fakeProc) Remove() error                                 { p.removed = true; return nil }
func (p *fakeProc) Describe() *reports.Runtime                    { return &reports.Runtime{} }
func (p *fakeProc) Kept() *reports.Kept                           { return &reports.Kept{} }
func (p *fakeProc) ServerLog() string                             { return "" }
func (p *fakeProc) LogEvidence(int) []string                      { return nil }
func (p *fakeProc) CheckIsolation(context.Context) checks.Finding { return checks.Finding{} }
func (p *fakeProc) Exited() <-chan struct{}                       { return make(chan struct{}) }
func (p *fakeProc) Exec(context.Context, string, ...string) ([]byte, int, error) {
	return nil, 0, nil
}

type reachableProc struct{ *fakeProc }

func (p reachableProc) Addr(context.Context, func(string)) (string, error) {
	return "", p.addrErr
}

// On a runtime without a shared filesystem mongod runs on the copy where the runtime sees
// it, on TCP at the runtime's address, standalone and unauthenticated only there; a process
// firedrill cannot reach is removed and refused, and a server that never runs says so.
func TestStartRemote(t *testing.T) {
	var got drill.LaunchSpec
	proc := &fakeProc{addrErr: errors.New("pod firedrill-d1 failed: ImagePullBackOff")}
	req := drill.EngineStart{Runtime: drill.RuntimeOptions{Kind: "kubernetes"}, Status: func(string) {},
		Remote: &drill.Remote{DataDir: "/var/lib/firedrill/data/db", Bind: "127.0.0.1", Port: 27017},
		Launch: func(_ context.Context, s drill.LaunchSpec) (drill.Process, error) {
			got = s
			return reachableProc{proc}, nil
		}}
	srv, findings, err := Drill{}.Start(t.Context(), req)
	if err != nil || findings != nil || srv == nil {
		t.Fatalf("Start = %v, %v, %v", srv, findings, err)
	}
	for _, want := range [][]string{{"--dbpath", "/var/lib/firedrill/data/db"}, {"--bind_ip", "127.0.0.1"}, {"--port", "27017"}} {
		if i := slices.Index(got.Args, want[0]); i < 0 || got.Args[i+1] != want[1] {
			t.Errorf("args %v: want %s %s", got.Args, want[0], want[1])
		}
	}
	for _, never := range []string{"--replSet", "--config", "--auth", "--keyFile"} {
		if slices.Contains(got.Args, never) {
			t.Errorf("args %v include %s", got.Args, never)
		}
	}
	if got.Image != Image || !strings.Contains(got.Listen, "127.0.0.1:27017") {
		t.Errorf("spec %+v", got)
	}
	err = srv.WaitReady(t.Context(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "ImagePullBackOff") {
		t.Errorf("WaitReady of a pod that never runs: %v", err)
	}

	unreachable := &fakeProc{}
	req.Launch = func(context.Context, drill.LaunchSpec) (drill.Process, error) { return unreachable, nil }
	if _, _, err := (Drill{}).Start(t.Context(), req); !errors.Is(err, drill.ErrUnsupported) || !unreachable.removed {
		t.Errorf("a process firedrill cannot reach: err %v, removed %v", err, unreachable.removed)
	}
	req.Copy = &drill.Copy{Logical: &drill.LogicalDump{Path: "/x.archive", Format: drill.LogicalMongoArchive}}
	if _, _, err := (Drill{}).Start(t.Context(), req); !errors.Is(err, drill.ErrUnsupported) {
		t.Errorf("a mongodump archive on kubernetes: %v", err)
	}
}

func TestTCPURI(t *testing.T) {
	if u := TCPURI("127.0.0.1:40123"); u != "mongodb://127.0.0.1:40123/?directConnection=true&appName=firedrill-drill" {
		t.Errorf("uri %s", u)
	}
}
