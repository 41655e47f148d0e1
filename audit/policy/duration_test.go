package policy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"31d", 31 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"2d30m", 48*time.Hour + 30*time.Minute, false},
		{"1dx", 0, true},
		{"1d", 24 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"0d", 0, false},
		{"90s", 90 * time.Second, false},
		{"1h30m", 90 * time.Minute, false},
		{"10m", 10 * time.Minute, false},
		{" 2h ", 2 * time.Hour, false},
		{"0", 0, false},
		{"", 0, true},
		{"d", 0, true},
		{"abc", 0, true},
		{"10", 0, true},
		{"-1h", 0, true},
		{"-1d", 0, true},
		{"xd", 0, true},
		{"10 minutes", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := policy.ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "invalid duration") {
					t.Errorf("error %q does not say invalid duration", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDurationMarshal(t *testing.T) {
	d := policy.Duration{Duration: 90 * time.Minute}
	b, err := json.Marshal(struct{ D policy.Duration }{d})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"D":"1h30m0s"}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	y, err := d.MarshalYAML()
	if err != nil || y != "1h30m0s" {
		t.Errorf("MarshalYAML = %v, %v; want 1h30m0s", y, err)
	}
}
