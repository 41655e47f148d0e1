// Package dump is the drill source of logical dumps (restore.source.kind: dump): pg_dump files
// in a local directory, custom (-Fc), directory (-Fd, or a tar of one), tar (-Ft) or plain
// SQL, each optionally gzip- or zstd-compressed as a whole (told by magic bytes, not names).
// A drill restores the newest into a fresh cluster in its scratch directory, which the
// runtime then starts as is (drill.Copy.Clean): no backup_label, no recovery.
package dump
