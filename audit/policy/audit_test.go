package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
)

const auditConfig = `targets:
  - name: orders
    connection:
      dsn: "host=/run/pg"
    snapshot:
      local:
        dataDir: /var/lib/pg
        repository: /backups/orders
    objectives:
      rpo: 6h
    audit:
      sources:
        - location: primary
          prefix: orders/
          match: "*.dump"
        - location: offsite
        - location: mirror
          prefix: orders
      copies:
        minCopies: 4
        minOffsite: 0
locations:
  - name: primary
    kind: s3
    s3:
      endpoint: http://127.0.0.1:7070
      region: us-east-1
      bucket: backups
      pathStyle: true
      credentials:
        accessKeyIdEnv: PRIMARY_AK
        secretAccessKeyEnv: PRIMARY_SK
  - name: offsite
    kind: s3
    s3:
      region: eu-west-1
      bucket: backups-eu
      prefix: orders/
      credentials:
        file: aws-credentials
        profile: offsite
  - name: mirror
    kind: directory
    path: mirror
`

func TestParseAuditDefaults(t *testing.T) {
	cfg, err := policy.Parse(configFile, []byte(auditConfig))
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Targets[0]
	a := tg.Audit
	if got := []string{a.Sources[0].Name, a.Sources[1].Name, a.Sources[2].Name}; strings.Join(got, ",") != "primary,offsite,mirror" {
		t.Errorf("source names = %v (default: the location's name)", got)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"wal.maxReady", a.WAL.MaxReady, policy.DefaultAuditMaxReady},
		{"wal.idleWalBytes", a.WAL.IdleWALBytes, int64(policy.DefaultAuditIdleWALBytes)},
		{"size.minBytes", a.Size.MinBytes, int64(1)},
		{"size.maxDrop", a.Size.MaxDrop, 0.5},
		{"size.maxGrowth", a.Size.MaxGrowth, 1.0},
		{"size.history", a.Size.History, 7},
		{"copies.primary", a.Copies.Primary, "primary"},
		{"copies.in", strings.Join(a.Copies.In, ","), "primary,offsite,mirror"},
		{"copies.liveDatabase", *a.Copies.LiveDatabase, true},
		{"copies.minCopies", a.Copies.MinCopies, 4},
		{"copies.minMedia", a.Copies.MinMedia, 2},
		{"copies.minOffsite (explicit 0)", *a.Copies.MinOffsite, 0},
		{"copies.minImmutable", *a.Copies.MinImmutable, 1},
		{"copies.immutableFor", a.Copies.ImmutableFor.Duration, 30 * 24 * time.Hour},
		{"copies.maxLag (the RPO)", a.Copies.MaxLag.Duration, 6 * time.Hour},
		{"site (the primary's)", a.Site, policy.Site{Region: "us-east-1", Provider: "127.0.0.1:7070"}},
		{"s3 media", cfg.Locations[0].Media, policy.MediaObjectStorage},
		{"aws provider", cfg.Locations[1].Provider, "aws"},
		{"region from s3", cfg.Locations[1].Region, "eu-west-1"},
		{"relative credentials file", cfg.Locations[1].S3.Credentials.File, "/etc/firedrill/aws-credentials"},
		{"relative directory", cfg.Locations[2].Path, "/etc/firedrill/mirror"},
		{"directory media", cfg.Locations[2].Media, policy.MediaDisk},
		{"primary onsite", cfg.Locations[0].IsOffsite(a.Site), false},
		{"another region is offsite", cfg.Locations[1].IsOffsite(a.Site), true},
		{"a directory is onsite", cfg.Locations[2].IsOffsite(a.Site), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseAuditDefaultSource(t *testing.T) {
	cfg, err := policy.Parse(configFile, []byte(minimalTarget))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Targets[0].Audit
	if len(a.Sources) != 1 || a.Sources[0].Name != "snapshots" || a.Sources[0].Location != "" || a.Copies.Primary != "snapshots" {
		t.Errorf("default sources = %+v, primary %q; want the target's own snapshots", a.Sources, a.Copies.Primary)
	}
	if a.Copies.MaxLag.Duration != policy.DefaultRPO {
		t.Errorf("maxLag = %s, want the default RPO", a.Copies.MaxLag)
	}
}

func TestParseAuditErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		key, msg   string
	}{
		{"unknown location", minimalTarget + `    audit:
      sources:
        - location: nowhere
`, 11, "targets[0].audit.sources[0].location", `no location "nowhere"`},
		{"bucket required", minimalTarget + `locations:
  - name: b
    kind: s3
    s3:
      region: us-east-1
`, 12, "locations[0].s3.bucket", "required with kind s3"},
		{"endpoint with credentials", minimalTarget + `locations:
  - name: b
    kind: s3
    s3:
      endpoint: https://AKIA:secret@s3.example.com
      region: us-east-1
      bucket: x
`, 13, "locations[0].s3.endpoint", "must not hold credentials"},
		{"half the env credentials", minimalTarget + `locations:
  - name: b
    kind: s3
    s3:
      region: us-east-1
      bucket: x
      credentials:
        accessKeyIdEnv: AK
`, 15, "locations[0].s3.credentials", "go together"},
		{"unknown kind", minimalTarget + `locations:
  - name: b
    kind: tape
`, 11, "locations[0].kind", `"tape" is not supported`},
		{"max drop over 1", minimalTarget + `    audit:
      size:
        maxDrop: 1.5
`, 11, "targets[0].audit.size.maxDrop", "fraction in (0, 1]"},
		{"unknown check to skip", minimalTarget + `    audit:
      skip: [wal]
`, 10, "targets[0].audit.skip[0]", `unknown check "wal"`},
		{"unknown copies source", minimalTarget + `    audit:
      copies:
        in: [elsewhere]
`, 11, "targets[0].audit.copies.in[0]", `no source "elsewhere"`},
		{"a mistyped key", minimalTarget + `    audit:
      copies:
        mincopies: 3
`, 11, "targets[0].audit.copies.mincopies", `did you mean "minCopies"?`},
		{"unknown verify", minimalTarget + `    audit:
      copies:
        verify: trust
`, 11, "targets[0].audit.copies.verify", `"trust" is not supported (supported: store, claimed, read)`},
		{"unknown immutableMode", minimalTarget + `    audit:
      copies:
        immutableMode: governance
`, 11, "targets[0].audit.copies.immutableMode", `(supported: any, compliance)`},
		{"archive with path and location", minimalTarget + `    audit:
      wal:
        archive:
          path: /archive
          location: wal
`, 11, "targets[0].audit.wal.archive", "set path or location, not both"},
		{"archive in an unknown location", minimalTarget + `    audit:
      wal:
        archive:
          location: nowhere
`, 12, "targets[0].audit.wal.archive.location", `no location "nowhere"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse(configFile, []byte(tt.yaml))
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *policy.Error", err)
			}
			if pe.Line != tt.line || pe.Key != tt.key || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %s:%d %s: %s; want line %d key %s msg containing %q", pe.File, pe.Line, pe.Key, pe.Msg, tt.line, tt.key, tt.msg)
			}
			if strings.Contains(err.Error(), ":secret@") {
				t.Errorf("a credential in the endpoint reached the error: %v", err)
			}
		})
	}
}

// Issue 17 item 7: a *Env key holds a variable's name; a value that is not one (a secret put
// there by mistake) is a configuration error at its line that never repeats the value.
func TestParseEnvNames(t *testing.T) {
	loc := func(key, v string) string {
		return minimalTarget + `locations:
  - name: b
    kind: s3
    s3:
      region: us-east-1
      bucket: x
      credentials:
        accessKeyIdEnv: B_AK
        ` + key + `: "` + v + `"
`
	}
	tests := []struct {
		name, yaml, secret string
		line               int
		key, msg           string
	}{
		{"a secret access key with '/' and '+'", loc("secretAccessKeyEnv", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRET1"), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRET1",
			17, "locations[0].s3.credentials.secretAccessKeyEnv", "must be the name of an environment variable"},
		{"a secret access key that looks like a name", loc("secretAccessKeyEnv", "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET1"), "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET1",
			17, "locations[0].s3.credentials.secretAccessKeyEnv", "looks like a credential"},
		{"an access key id", strings.Replace(loc("secretAccessKeyEnv", "B_SK"), "accessKeyIdEnv: B_AK", "accessKeyIdEnv: AKIAIOSFODNN7EXAMPLE", 1), "AKIAIOSFODNN7EXAMPLE",
			16, "locations[0].s3.credentials.accessKeyIdEnv", "looks like a credential"},
		{"a session token", strings.Replace(loc("sessionTokenEnv", "FwoGZXIvYXdzE//////////wEaDHy="), "accessKeyIdEnv: B_AK", "accessKeyIdEnv: B_AK\n        secretAccessKeyEnv: B_SK", 1),
			"FwoGZXIvYXdzE//////////wEaDHy=", 18, "locations[0].s3.credentials.sessionTokenEnv", "must be the name of an environment variable"},
		{"a DSN in dsnEnv", strings.Replace(minimalTarget, `dsn: "host=/run/pg"`, `dsnEnv: "postgres://app:hunter2@db/orders"`, 1), "hunter2",
			4, "targets[0].connection.dsnEnv", "must be the name of an environment variable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse(configFile, []byte(tt.yaml))
			var pe *policy.Error
			if !errors.Is(err, policy.ErrInvalid) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			found := false
			for _, e := range err.(policy.Errors) {
				if e.Key == tt.key && e.Line == tt.line && strings.Contains(e.Msg, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error at line %d key %s containing %q in:\n%v", tt.line, tt.key, tt.msg, err)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the value reached the error: %v", err)
			}
		})
	}
	// Real names pass.
	if _, err := policy.Parse(configFile, []byte(loc("secretAccessKeyEnv", "EU_SECRET_ACCESS_KEY"))); err != nil {
		t.Errorf("a valid name: %v", err)
	}
}

func TestParseAuditIssue17Defaults(t *testing.T) {
	cfg, err := policy.Parse(configFile, []byte(minimalTarget+`    audit:
      wal:
        archive:
          path: wal-archive
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Targets[0].Audit
	checks := []struct {
		name      string
		got, want any
	}{
		{"futureTolerance", a.FutureTolerance.Duration, 5 * time.Minute},
		{"wal.failureGrace", a.WAL.FailureGrace.Duration, 5 * time.Minute},
		{"copies.verify", a.Copies.Verify, policy.VerifyStore},
		{"copies.immutableMode", a.Copies.ImmutableMode, policy.ImmutableAny},
		{"copies.readBytesPerSecond", a.Copies.ReadBytesPerSecond, int64(64 << 20)},
		{"wal.archive.path (relative to the file)", a.WAL.Archive.Path, "/etc/firedrill/wal-archive"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if dir, ok := cfg.WALArchiveDir(&cfg.Targets[0]); !ok || dir != "/etc/firedrill/wal-archive" {
		t.Errorf("WALArchiveDir = %s, %v", dir, ok)
	}
}
