// Package progress shows what a long operation is doing: on a terminal, one live line with the
// phase, the time spent and what it waits for; elsewhere, structured log records only.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Reporter receives phases and status messages from long operations.
type Reporter interface {
	Phase(name string)
	Status(msg string)
	Done()
}

// New returns a terminal reporter when tty is true, else one that logs to log.
func New(w io.Writer, tty bool, log *slog.Logger) Reporter {
	if tty {
		t := &terminal{w: w, start: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
		go t.loop()
		return t
	}
	return &logger{log: log}
}

type terminal struct {
	w          io.Writer
	mu         sync.Mutex
	start      time.Time
	phase      string
	phaseStart time.Time
	status     string
	stop       chan struct{}
	stopped    chan struct{}
	once       sync.Once
}

func (t *terminal) Phase(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finishPhase()
	t.phase, t.phaseStart, t.status = name, time.Now(), ""
	t.draw()
}

// finishPhase leaves a line behind for the phase that ended.
func (t *terminal) finishPhase() {
	if t.phase != "" {
		fmt.Fprintf(t.w, "\r\033[K  ✓ %-28s %6.1fs\n", t.phase, time.Since(t.phaseStart).Seconds())
	}
}

func (t *terminal) Status(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status = msg
	t.draw()
}

func (t *terminal) draw() {
	if t.phase == "" {
		return
	}
	line := fmt.Sprintf("  … %-28s %6.1fs  %s", t.phase, time.Since(t.phaseStart).Seconds(), t.status)
	if len(line) > 150 {
		line = line[:150]
	}
	fmt.Fprintf(t.w, "\r\033[K%s", line)
}

func (t *terminal) loop() {
	defer close(t.stopped)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.mu.Lock()
			t.draw()
			t.mu.Unlock()
		}
	}
}

func (t *terminal) Done() {
	t.once.Do(func() {
		close(t.stop)
		<-t.stopped
		t.mu.Lock()
		t.finishPhase()
		t.phase = ""
		t.mu.Unlock()
	})
}

type logger struct {
	mu       sync.Mutex
	log      *slog.Logger
	phase    string
	lastSaid time.Time
}

func (l *logger) Phase(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = name
	l.log.Info("phase", "phase", name)
}

// Status is logged at most every 10 seconds: enough to see a stuck wait, not a flood.
func (l *logger) Status(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.lastSaid) < 10*time.Second {
		return
	}
	l.lastSaid = time.Now()
	l.log.Info("progress", "phase", l.phase, "status", msg)
}

func (l *logger) Done() {}
