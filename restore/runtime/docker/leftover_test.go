package docker

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestOrphaned(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	there := t.TempDir()
	gone := filepath.Join(there, "firedrill-drill-orders-0000dead")
	tests := []struct {
		name      string
		dir       string
		age       time.Duration
		olderThan time.Duration
		want      bool
	}{
		{"directory gone, any age", gone, time.Minute, 0, true},
		{"directory gone, old enough", gone, 3 * time.Hour, 2 * time.Hour, true},
		{"directory gone, too young", gone, time.Hour, 2 * time.Hour, false},
		{"directory still there (its drill's, or kept)", there, 3 * time.Hour, 0, false},
		{"no scratch directory label", "", 3 * time.Hour, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := container.Summary{Created: now.Add(-tt.age).Unix(), Labels: map[string]string{}}
			if tt.dir != "" {
				c.Labels[LabelScratchDir] = tt.dir
			}
			if got := orphaned(c, tt.olderThan, now); got != tt.want {
				t.Errorf("orphaned = %v, want %v", got, tt.want)
			}
		})
	}
}
