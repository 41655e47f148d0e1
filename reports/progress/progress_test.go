package progress

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTerminalLeavesOneLinePerPhase(t *testing.T) {
	var out syncBuf
	r := New(&out, true, nil)
	r.Phase("clone")
	r.Status("copying 10 MiB of 20 MiB (50%)")
	r.Phase("start-and-recovery")
	r.Status("waiting for recovery to reach consistency")
	r.Done()
	r.Done() // idempotent
	text := out.String()
	for _, want := range []string{"✓ clone", "✓ start-and-recovery", "copying 10 MiB of 20 MiB", "waiting for recovery"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, text)
		}
	}
	if n := strings.Count(text, "\n"); n != 2 {
		t.Errorf("%d finished lines, want 2 (one per phase):\n%q", n, text)
	}
}

func TestLoggerIsStructuredAndQuiet(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := New(&out, false, log)
	r.Phase("clone")
	for i := 0; i < 100; i++ {
		r.Status("copying")
	}
	r.Done()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log records, want 2 (the phase, and one rate-limited status):\n%s", len(lines), out.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["phase"] != "clone" {
		t.Errorf("first record %q: %v", lines[0], err)
	}
	if strings.Contains(out.String(), "\r") || strings.Contains(out.String(), "\033[") {
		t.Errorf("terminal control characters in log output: %q", out.String())
	}
}
