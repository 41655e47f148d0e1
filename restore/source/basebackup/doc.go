// Package basebackup is the drill source of base backups with a WAL archive
// (restore.source.kind: basebackup): pg_basebackup output in plain or tar format (base.tar,
// optionally .gz, with pg_wal.tar) under a directory, and the directory archive_command fills.
// A drill extracts the newest backup into scratch, stages the WAL files recovery needs from
// the archive into scratch (the archive is only read; the server never learns its path), and
// the throwaway recovers to recovery.target. A gap in the archive or a broken timeline
// history fails the drill naming the first missing segment; the point recovery reached is
// recorded, and for target latest it is the achieved RPO.
package basebackup
