package checks

import (
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestCanaryExpected(t *testing.T) {
	const secret = "s3cr3t-sentinel"
	env := func(name string) (string, bool) {
		if name == "CANARY" {
			return secret, true
		}
		return "", false
	}
	files := map[string]string{"/c": secret + "\n", "/crlf": secret + "\r\n", "/two": secret + "\n\n", "/bare": secret}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	tests := []struct {
		name     string
		cfg      CanaryConfig
		want     string
		from     string
		errorMsg string
	}{
		{name: "config", cfg: CanaryConfig{Equals: strp(secret)}, want: secret, from: "checks.canary.equals"},
		{name: "empty in config", cfg: CanaryConfig{Equals: strp("")}, want: "", from: "checks.canary.equals"},
		{name: "environment", cfg: CanaryConfig{EqualsEnv: "CANARY"}, want: secret, from: "environment variable CANARY"},
		{name: "unset environment", cfg: CanaryConfig{EqualsEnv: "NOPE"}, errorMsg: "environment variable NOPE is not set"},
		{name: "file loses one trailing newline", cfg: CanaryConfig{EqualsFile: "/c"}, want: secret, from: "file /c"},
		{name: "file loses one CRLF", cfg: CanaryConfig{EqualsFile: "/crlf"}, want: secret},
		{name: "file keeps a second newline", cfg: CanaryConfig{EqualsFile: "/two"}, want: secret + "\n"},
		{name: "file without newline", cfg: CanaryConfig{EqualsFile: "/bare"}, want: secret},
		{name: "missing file", cfg: CanaryConfig{EqualsFile: "/missing"}, errorMsg: "while reading /missing: file does not exist"},
		{name: "nothing set", cfg: CanaryConfig{}, errorMsg: "set one of equals, equalsEnv and equalsFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Canary{Config: tt.cfg, lookupEnv: env, readFile: read}
			got, from, err := c.expected()
			if tt.errorMsg != "" {
				if err == nil || !errors.Is(err, errCanaryExpected) || !strings.Contains(err.Error(), tt.errorMsg) {
					t.Fatalf("error %v, want one containing %q", err, tt.errorMsg)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds the expected value", err)
				}
				return
			}
			if err != nil || string(got) != tt.want || (tt.from != "" && from != tt.from) {
				t.Errorf("expected() = %q, %q, %v; want %q, %q", got, from, err, tt.want, tt.from)
			}
		})
	}
}

// The expected value never leaves the process through the configuration's JSON form.
func TestCanaryConfigJSONHidesTheValue(t *testing.T) {
	b, err := json.Marshal(Config{Canary: &CanaryConfig{Query: "SELECT 1", Equals: strp("s3cr3t-sentinel")}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cr3t") || !strings.Contains(string(b), `"query":"SELECT 1"`) {
		t.Errorf("JSON = %s", b)
	}
}

func TestCanaryAndSchemaRegistered(t *testing.T) {
	got, _ := BuildFor(Config{Canary: &CanaryConfig{Query: "SELECT 1", Equals: strp("x")}, Schema: &SchemaConfig{MinTables: 1},
		Amcheck: AmcheckOn(false), Checksums: new(bool), RowCounts: &RowCountConfig{Enabled: new(bool)}}, "postgres")
	var names []string
	for _, c := range got {
		names = append(names, c.Name())
	}
	if strings.Join(names, ",") != "schema,canary" {
		t.Errorf("BuildFor = %v, want schema then canary", names)
	}
	if got, skipped := BuildFor(Config{Canary: &CanaryConfig{}, Schema: &SchemaConfig{}, Amcheck: AmcheckOn(false), Checksums: new(bool),
		CheckTable: new(bool), RowCounts: &RowCountConfig{Enabled: new(bool)}}, "mariadb"); len(got) != 0 || len(skipped) != 2 {
		t.Errorf("for mariadb: %d checks, %d skipped; want both skipped", len(got), len(skipped))
	}
}
