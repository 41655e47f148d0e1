// Package files is the drill source of backups another tool wrote into a directory or under
// an S3 prefix (restore.source.kind rdb, mariadb-backup, mariadb-dump or mongodump): Redis
// RDB files (plain or gzipped) and AOF directories, mariadb-backup/xtrabackup full backups
// (one per directory, or per "directory" of objects on S3), mariadb-dump/mysqldump SQL files
// and mongodump --archive files (plain or gzipped). It lists them newest first and copies or
// downloads the chosen one into the drill's scratch directory, verifying a sha256sum sidecar
// (and on S3 the store's checksums) on the way; the engine's drill checks and starts the copy,
// or, for a logical dump (drill.Copy.Logical), loads it into an empty server.
package files
