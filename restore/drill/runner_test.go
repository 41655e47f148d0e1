package drill

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/snapshot"
)

var errSinkDown = errors.New("fake: the history disk is full")

// damagedSource's newest snapshot is damaged: a drill of it proves a failure
// (snapshot-integrity) without starting anything.
type damagedSource struct{ *emptySource }

func (*damagedSource) List(context.Context) ([]snapshot.Metadata, error) {
	return []snapshot.Metadata{{ID: "20261130T120000Z-dead01", Target: "x", Status: snapshot.StatusDamaged, Reason: "meta.json is unreadable", TakenAt: time.Now()}}, nil
}

// cancelSource cancels the run while it is listed: the drill in progress is interrupted.
type cancelSource struct {
	emptySource
	cancel context.CancelFunc
}

func (c *cancelSource) List(context.Context) ([]snapshot.Metadata, error) {
	c.cancel()
	return nil, nil
}

// sinkRecorder records results; it fails for the targets in fail.
type sinkRecorder struct {
	got  []string
	fail map[string]bool
}

func (s *sinkRecorder) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.got = append(s.got, r.Target+"="+string(r.Status))
	if s.fail[r.Target] {
		return errSinkDown
	}
	return nil
}

// doneProgress counts Done calls, as the CLI's terminal progress needs one per drill.
type doneProgress struct{ done *int }

func (doneProgress) Phase(string)  {}
func (doneProgress) Status(string) {}
func (p doneProgress) Done()       { *p.done++ }
func targetsOf(res []*reports.DrillResult) []string {
	out := make([]string, 0, len(res))
	for _, r := range res {
		out = append(out, r.Target+"="+string(r.Status))
	}
	return out
}

func TestRunTargets(t *testing.T) {
	tests := []struct {
		name string
		// sources by target: "empty" (an error result), "damaged" (a proven failure), "cancel"
		// (interrupted while drilling), "unknown" (an unknown --snapshot: a usage error).
		targets        []string
		sinkFails      []string
		nilSink        bool
		want           []string // results
		wantRecorded   []string
		wantErrIs      error
		wantRecordErr  bool
		wantUnrecorded bool
		wantStatus     reports.Status
	}{{
		name:         "each drilled in turn, each recorded",
		targets:      []string{"empty", "damaged"},
		want:         []string{"empty=error", "damaged=fail"},
		wantRecorded: []string{"empty=error", "damaged=fail"},
		wantStatus:   reports.StatusFail,
	}, {
		name:           "a sink that fails: every target still drilled, the run could not record",
		targets:        []string{"empty", "empty2"},
		sinkFails:      []string{"empty"},
		want:           []string{"empty=error", "empty2=error"},
		wantRecorded:   []string{"empty=error", "empty2=error"},
		wantRecordErr:  true,
		wantUnrecorded: true,
		wantStatus:     reports.StatusError,
	}, {
		name:          "a proven failure outranks a result that could not be recorded",
		targets:       []string{"damaged"},
		sinkFails:     []string{"damaged"},
		want:          []string{"damaged=fail"},
		wantRecorded:  []string{"damaged=fail"},
		wantRecordErr: true,
		wantStatus:    reports.StatusFail,
	}, {
		name:         "interrupted: the drill in progress is recorded, the next not started",
		targets:      []string{"cancel", "empty"},
		want:         []string{"cancel=error"},
		wantRecorded: []string{"cancel=error"},
		wantStatus:   reports.StatusError,
	}, {
		name:         "a usage error stops at once, unrecorded",
		targets:      []string{"empty", "unknown", "damaged"},
		want:         []string{"empty=error"},
		wantRecorded: []string{"empty=error"},
		wantErrIs:    ErrUsage,
		wantStatus:   reports.StatusError,
	}, {
		name:       "no sink",
		targets:    []string{"damaged"},
		nilSink:    true,
		want:       []string{"damaged=fail"},
		wantStatus: reports.StatusFail,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var opts []Options
			for _, name := range tt.targets {
				o := Options{Target: name, Engine: "postgres", Driver: "local", RTO: time.Minute, Runtime: RuntimeOptions{ScratchDir: t.TempDir()}}
				if name == "unknown" {
					o.SnapshotID = "nope"
				}
				opts = append(opts, o)
			}
			done := 0
			newDrill := func(o Options) *Drill {
				var src Source = &emptySource{}
				switch o.Target {
				case "damaged":
					src = &damagedSource{&emptySource{}}
				case "cancel":
					src = &cancelSource{cancel: cancel}
				}
				return &Drill{Source: src, Progress: doneProgress{&done}}
			}
			sink := &sinkRecorder{fail: map[string]bool{}}
			for _, n := range tt.sinkFails {
				sink.fail[n] = true
			}
			var s Sink = sink
			if tt.nilSink {
				s = nil
			}
			b, err := RunTargets(ctx, opts, newDrill, s)
			if !errors.Is(err, tt.wantErrIs) || (err != nil) != (tt.wantErrIs != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErrIs)
			}
			if got := targetsOf(b.Results); !slices.Equal(got, tt.want) {
				t.Errorf("results %v, want %v", got, tt.want)
			}
			if !slices.Equal(sink.got, tt.wantRecorded) {
				t.Errorf("recorded %v, want %v", sink.got, tt.wantRecorded)
			}
			wantDone := len(tt.want)
			if tt.wantErrIs != nil {
				wantDone++ // the drill that stopped the run ran too
			}
			if done != wantDone {
				t.Errorf("progress done %d times, want once for each of %d drills", done, wantDone)
			}
			if (b.RecordErr != nil) != tt.wantRecordErr || tt.wantRecordErr && !errors.Is(b.RecordErr, errSinkDown) {
				t.Errorf("RecordErr = %v, want one: %v", b.RecordErr, tt.wantRecordErr)
			}
			if (b.Unrecorded() != nil) != tt.wantUnrecorded {
				t.Errorf("Unrecorded() = %v, want one: %v", b.Unrecorded(), tt.wantUnrecorded)
			}
			if got := b.Status(); got != tt.wantStatus {
				t.Errorf("status %s, want %s", got, tt.wantStatus)
			}
		})
	}
}
