package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RequirePassword gives user a password and makes the server demand it (scram-sha-256) on TCP
// connections from 127.0.0.1; connections over the unix socket stay trusted, so the harness
// and the test can still administer the server. Start the server with TCP: true.
func RequirePassword(t testing.TB, pg *Postgres, user, password string) {
	t.Helper()
	if pg.ListenAddresses == "" {
		t.Fatal("RequirePassword needs a server started with TCP: true")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pg.Exec(ctx, "postgres", "SET password_encryption = 'scram-sha-256'; ALTER ROLE "+quoteIdent(user)+" PASSWORD '"+password+"'"); err != nil {
		t.Fatalf("while setting %s's password: %v", user, err)
	}
	hba := "# firedrill test: a password on TCP, trust on the socket\n" +
		"local all all trust\n" +
		"host all all 127.0.0.1/32 scram-sha-256\n"
	// Rewritten in place: the file keeps its owner (the server's user).
	if err := os.WriteFile(filepath.Join(pg.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatalf("while writing pg_hba.conf: %v", err)
	}
	if err := pg.Exec(ctx, "postgres", "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("while reloading pg_hba.conf: %v", err)
	}
	// The postmaster rereads pg_hba.conf after the signal: wait until TCP asks for the password.
	for {
		conn, err := pgx.Connect(ctx, TCPDSN(pg, user, password+"-not"))
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "28P01" {
			return
		}
		if conn != nil {
			_ = conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the server still accepts a wrong password after reloading pg_hba.conf (last: %v)", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TCPDSN is a keyword/value DSN reaching the server over 127.0.0.1 as user with password.
func TCPDSN(pg *Postgres, user, password string) string {
	return "host=127.0.0.1 port=" + itoa(pg.Port) + " user=" + user + " password=" + password + " dbname=postgres sslmode=disable connect_timeout=5"
}

func quoteIdent(s string) string { return `"` + s + `"` }
