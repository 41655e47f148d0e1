package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSocketConnString(t *testing.T) {
	tests := []struct {
		name, dir, user, want string
	}{
		{"plain", "/scratch/socket", "postgres", "host=/scratch/socket port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5"},
		{"space in the directory", "/scratch dir/socket", "postgres", "host='/scratch dir/socket' port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5"},
		{"quote in the user", "/s", "o'brien", `host=/s port=5432 user='o\'brien' dbname=postgres sslmode=disable connect_timeout=5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SocketConnString(tt.dir, 5432, tt.user, "postgres")
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("pgx cannot parse %s: %v", got, err)
			}
			if cfg.Host != tt.dir || cfg.User != tt.user {
				t.Errorf("parsed host %q user %q, want %q %q", cfg.Host, cfg.User, tt.dir, tt.user)
			}
		})
	}
}

func TestReadinessServerExited(t *testing.T) {
	r := Readiness{ConnString: SocketConnString(t.TempDir(), 5432, "postgres", "postgres"), User: "postgres",
		Running: func() bool { return false }, ExitDetail: func() string { return "FATAL: bad backup_label" }, Where: "on /x"}
	err := r.Wait(context.Background(), nil)
	if !errors.Is(err, ErrServerExited) || !strings.Contains(err.Error(), "FATAL: bad backup_label") {
		t.Fatalf("Wait = %v, want ErrServerExited with the log line", err)
	}
}

func TestReadinessCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Readiness{ConnString: SocketConnString(t.TempDir(), 5432, "postgres", "postgres"), User: "postgres",
		Running: func() bool { return true }, ExitDetail: func() string { return "" }, Where: "in container 1a2b3c"}
	err := r.Wait(ctx, nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "in container 1a2b3c") {
		t.Fatalf("Wait = %v, want context.Canceled naming where the server runs", err)
	}
}
