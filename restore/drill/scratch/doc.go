// Package scratch owns the drills' scratch directories under a scratch root: each drill holds
// an flock on a lock file beside its directory for its whole life (a held lock is a live drill,
// a released one a dead or finished one), and Sweep finds what dead drills left (a full copy of
// production data, perhaps a server still running on it), stops and removes it, and records a
// drill that died without a record as interrupted.
package scratch
