// Package retention decides which snapshots of a target to delete: keep the newest N and/or
// those younger than a duration, and never delete the last snapshot proved restorable (the
// only one whose most recent drill passed). The decision is a pure function of the snapshots,
// the drill history and an injected time; Apply carries it out.
package retention
