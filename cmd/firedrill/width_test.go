package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair and sets its size; the test reads its width back.
func openPTY(t *testing.T, cols, rows int) (pty, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pty: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}); err != nil {
		t.Fatalf("sizing the pty: %v", err)
	}
	return m, s
}

func TestOutputWidth(t *testing.T) {
	_, tty := openPTY(t, 93, 40)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "COLUMNS" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name    string
		out     any
		columns string
		want    int
	}{
		{"a terminal: its width", tty, "", 93},
		{"a terminal: its width, not a stale $COLUMNS", tty, "200", 93},
		{"a pipe: unknown", pw, "", 0},
		{"a pipe with $COLUMNS", pw, "100", 100},
		{"a buffer with $COLUMNS", &bytes.Buffer{}, " 72 ", 72},
		{"$COLUMNS not a number", pw, "wide", 0},
		{"$COLUMNS not positive", pw, "-5", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got int
			switch o := tt.out.(type) {
			case *os.File:
				got = outputWidth(o, env(tt.columns))
			case *bytes.Buffer:
				got = outputWidth(o, env(tt.columns))
			}
			if got != tt.want {
				t.Errorf("outputWidth = %d, want %d", got, tt.want)
			}
		})
	}
}
