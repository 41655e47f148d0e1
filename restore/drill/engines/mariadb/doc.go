// Package mariadb drills MariaDB copies: it prepares a mariadb-backup copy (mariadb-backup
// --prepare), starts a throwaway mariadbd on it through the drill runtime's Launch (unix socket
// only, no binary log, no replication, no events, the source's plugins and options left
// out, a throwaway account made by an init file), proves InnoDB recovered it, and hands the
// checks a connection pool. It registers with restore/drill as engine "mariadb" (see
// restore/drill/builtin).
package mariadb
