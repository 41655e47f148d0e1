// Package pgbackrest is the drill source of pgBackRest repositories (restore.source.kind:
// pgbackrest): a stanza's backups, listed with `pgbackrest info --output=json`. A drill runs
// `pgbackrest verify` (its report is the integrity evidence), `pgbackrest restore` of the
// chosen backup into scratch (--pg1-path in scratch, --archive-mode=off, tablespaces mapped
// into scratch: production is never touched), and fetches the WAL recovery needs with
// `pgbackrest archive-get` into a staging directory in scratch: the throwaway replays from
// there to recovery.target and never learns where the repository is. Every pgbackrest
// command firedrill runs only reads the repository; locks go to a private directory and file
// logging is off.
package pgbackrest
