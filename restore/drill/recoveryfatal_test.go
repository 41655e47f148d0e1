package drill

import "testing"

func TestRecoveryFatal(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"target not reached", []string{
			"2026-11-30 10:41:17.618 GMT [17] FATAL:  the database system is starting up",
			"2026-11-30 10:41:17.700 GMT [12] LOG:  redo done at 0/5000238",
			"2026-11-30 10:41:17.853 GMT [12] FATAL:  recovery ended before configured recovery target was reached",
		}, "recovery ended before configured recovery target was reached"},
		{"panic", []string{"x PANIC:  could not locate a valid checkpoint record"}, "could not locate a valid checkpoint record"},
		{"only refused connections", []string{"x FATAL:  the database system is in recovery mode", "x FATAL:  the database system is not yet accepting connections"}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recoveryFatal(tt.lines); got != tt.want {
				t.Errorf("recoveryFatal = %q, want %q", got, tt.want)
			}
		})
	}
}
