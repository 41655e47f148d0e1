package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// validateDocker checks restore.docker's keys.
func validateDocker(p string, d DockerRuntime, add addFunc) {
	if _, err := d.MemoryBytes(); err != nil {
		add(p+".memory", "%v", err)
	}
	if d.CPUs != nil && *d.CPUs < 0 {
		add(p+".cpus", "must not be negative, got %g", *d.CPUs)
	}
	if d.UID < 0 {
		add(p+".uid", "must not be negative, got %d", d.UID)
	}
	if strings.ContainsAny(d.Image, " \t\n") {
		add(p+".image", "%q is not an image reference", d.Image)
	}
}

// ParseBytes reads a size: a number of bytes, or one with a unit (K, M, G, T: powers of 1024,
// with an optional i and B: 512MiB, 2G, 1gb). Empty or "0": no limit.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	mult := map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n < 0 {
		return 0, fmt.Errorf("%q is not a size (such as 512MiB or 2GiB)", s)
	}
	return n * mult, nil
}
