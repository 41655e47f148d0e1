package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "90s", "10m", "1h30m", or with a day unit, "31d".
type Duration struct {
	time.Duration
	// set records that the file gave a value, so that an explicit 0 is not taken for "unset".
	set bool
}

// IsSet reports whether the configuration file gave the duration.
func (d Duration) IsSet() bool { return d.set }

// ParseDuration parses Go durations plus a whole-day "d" unit.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	// A leading day count: "31d", "1d12h".
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 10m, 1h, 31d, 1d12h)", s)
		}
		days, s = time.Duration(n*float64(24*time.Hour)), s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 10m, 1h, 31d, 1d12h)", orig)
	}
	return days + d, nil
}

// UnmarshalYAML parses a scalar duration; its error carries the line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "expected a duration such as 10m or 1h")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return lineErr(n, err.Error())
	}
	d.Duration, d.set = v, true
	return nil
}

// MarshalYAML writes the duration back in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText is used by JSON.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func lineErr(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
