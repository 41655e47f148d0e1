package redis

import "testing"

func TestDefaultImage(t *testing.T) {
	for in, want := range map[string]string{"7.0.15": "redis:7.0", "7.2.4": "redis:7.2", "6": "redis:7", "": "redis:7"} {
		if got := defaultImage(in); got != want {
			t.Errorf("defaultImage(%q) = %q, want %q", in, got, want)
		}
	}
}
