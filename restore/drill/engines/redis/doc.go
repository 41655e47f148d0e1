// Package redis is the Redis restore drill: it checks a snapshot's RDB (or AOF) with
// redis-check-rdb (redis-check-aof), starts a throwaway redis-server on the copy in the local
// runtime's sandbox, listening on a unix socket only, and proves it loaded the RDB this
// snapshot's BGSAVE wrote. Its checks (keys, command assertions, freshness) are package checks'.
package redis
