// Package redis is the Redis restore drill: it checks a snapshot's RDB (or AOF) with
// redis-check-rdb (redis-check-aof), starts a throwaway redis-server on the copy through the
// drill's runtime (the local sandbox, or a container), listening on a unix socket only, and
// proves it loaded the RDB this snapshot's BGSAVE wrote. Its checks (keys, command assertions,
// freshness) are package checks'.
package redis
