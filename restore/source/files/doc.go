// Package files is the drill source of engine-native backups another tool wrote into a
// directory (restore.source.kind rdb or mariadb-backup): Redis RDB files (plain or gzipped)
// and AOF directories, or mariadb-backup/xtrabackup full backups, one per directory. It lists
// them newest first and copies the chosen one into the drill's scratch directory, verifying a
// sha256sum sidecar when there is one; the engine's drill checks and starts the copy.
package files
