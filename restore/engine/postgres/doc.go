// Package postgres is firedrill's PostgreSQL knowledge: finding server binaries for a major
// version, running a private server process (as an unprivileged user, optionally without
// network), taking an online backup with pg_backup_start/pg_backup_stop in one held session, and
// preparing a restored data directory so that the throwaway server can never touch production.
package postgres
