// Package dump is the drill source of logical dumps (restore.source.kind: dump): pg_dump files
// in a local directory, custom (-Fc), directory (-Fd) or plain SQL, plain and custom optionally
// gzip-compressed. A drill restores the newest into a fresh cluster in its scratch directory,
// which the runtime then starts as is (drill.Copy.Clean): no backup_label, no recovery.
package dump
