// Package redis is firedrill's Redis knowledge for snapshots: a BGSAVE whose completion is
// proved (LASTSAVE or the save counter moves on, rdb_last_bgsave_status is ok), within a bounded
// wait, so the RDB file a snapshot copies is the one this save wrote.
package redis
