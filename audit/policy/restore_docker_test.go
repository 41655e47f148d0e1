package policy

import "testing"

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"1048576", 1 << 20, false}, {"512MiB", 512 << 20, false},
		{"2GiB", 2 << 30, false}, {"1G", 1 << 30, false}, {"1gb", 1 << 30, false}, {"64k", 64 << 10, false},
		{"lots", 0, true}, {"2XB", 0, true}, {"1.5G", 0, true}, {"-1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBytes(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParseBytes(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

func TestValidateDocker(t *testing.T) {
	neg := -1.0
	tests := []struct {
		name string
		d    DockerRuntime
		keys []string
	}{
		{"defaults", DockerRuntime{Memory: DefaultDockerMemory}, nil},
		{"bad memory", DockerRuntime{Memory: "lots"}, []string{"t.memory"}},
		{"negative cpus and uid", DockerRuntime{CPUs: &neg, UID: -2}, []string{"t.cpus", "t.uid"}},
		{"image with a space", DockerRuntime{Image: "postgres 15"}, []string{"t.image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			validateDocker("t", tt.d, func(key, format string, a ...any) { got = append(got, key) })
			if len(got) != len(tt.keys) {
				t.Fatalf("problems at %v, want %v", got, tt.keys)
			}
			for i := range got {
				if got[i] != tt.keys[i] {
					t.Errorf("problems at %v, want %v", got, tt.keys)
				}
			}
		})
	}
}
