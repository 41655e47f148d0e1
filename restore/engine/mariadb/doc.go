// Package mariadb is firedrill's MySQL/MariaDB knowledge for snapshots: FLUSH TABLES WITH READ
// LOCK held on one pinned connection while a volume snapshot is cut, with the binary log
// position read under that lock, and an explicit InnoDB-only crash-consistent mode (FLUSH LOGS,
// no global lock). A local snapshot (driver local) is mariadb-backup --backup into the
// repository (backup.go): consistent without a file-level freeze, prepared at restore.
package mariadb
