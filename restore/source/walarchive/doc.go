// Package walarchive reads a PostgreSQL WAL archive as archive_command leaves it in a
// directory: segment, history, .partial and .backup files, optionally gzip-compressed. It
// plans the files a recovery from a base backup needs (following timeline history as
// recovery_target_timeline = latest does), and finds the first missing segment or a broken
// timeline history without restoring anything: the basebackup drill source stages what the
// plan names into scratch, and the audit's wal-continuity check reports the PITR window.
package walarchive
