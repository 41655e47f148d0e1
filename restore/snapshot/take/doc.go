// Package take takes snapshots: of one target (Take) or of a group under one batch id
// (TakeGroup). It opens the one held session to each database, freezes it the engine's way
// within a bounded time, and has the target's snapshot driver (local directory or CSI
// VolumeSnapshots) cut and record it. Whatever fails, the databases are thawed first and no
// partial snapshot is left.
package take
