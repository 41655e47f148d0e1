package policy_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
)

func TestTargetDSN(t *testing.T) {
	const secret = "host=/run/pg user=app password=hunter2"
	const env = "FIREDRILL_TEST_ORDERS_DSN"
	tests := []struct {
		name    string
		conn    policy.Connection
		env     *string
		want    string
		wantErr bool
	}{
		{name: "dsn", conn: policy.Connection{DSN: secret}, want: secret},
		{name: "dsnEnv set", conn: policy.Connection{DSNEnv: env}, env: ptr(secret), want: secret},
		{name: "dsnEnv empty", conn: policy.Connection{DSNEnv: env}, env: ptr(""), wantErr: true},
		{name: "dsnEnv unset", conn: policy.Connection{DSNEnv: env}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != nil {
				t.Setenv(env, *tt.env)
			} else {
				t.Setenv(env, "") // restored after the test...
				os.Unsetenv(env)  // ...and really unset during it
			}
			tg := &policy.Target{Name: "orders", Connection: tt.conn}
			got, err := tg.DSN()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DSN() = %q, want an error", got)
				}
				if !errors.Is(err, policy.ErrInvalid) {
					t.Errorf("errors.Is(err, ErrInvalid) = false: %v", err)
				}
				if !strings.Contains(err.Error(), env) || !strings.Contains(err.Error(), "targets.orders.connection.dsnEnv") {
					t.Errorf("error %q does not name the variable and the key", err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q holds the DSN", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DSN(): %v", err)
			}
			if got != tt.want {
				t.Errorf("DSN() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDSNNeverLeaks(t *testing.T) {
	const password = "hunter2-secret"
	doc := strings.Replace(minimalTarget, `dsn: "host=/run/pg"`, `dsn: "host=/run/pg password=`+password+`"`, 1)

	t.Run("JSON of a valid config", func(t *testing.T) {
		cfg, err := policy.Parse(configFile, []byte(doc))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), password) {
			t.Errorf("JSON of the config holds the DSN: %s", b)
		}
	})
	for _, tt := range []struct{ name, doc string }{
		{"dsn and dsnEnv", strings.Replace(doc, "    connection:\n", "    connection:\n      dsnEnv: X\n", 1)},
		{"other errors", strings.Replace(doc, "  - name: orders\n", "  - name: Orders\n    engine: mysql\n    zzzz: 1\n", 1)},
		{"validation errors", strings.Replace(doc, "  - name: orders\n", "  - name: Orders\n    engine: mysql\n", 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse(configFile, []byte(tt.doc))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error holds the DSN: %v", err)
			}
		})
	}
}
