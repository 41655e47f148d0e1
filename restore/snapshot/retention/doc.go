// Package retention decides which snapshots of a target to delete: keep the newest N and/or
// those younger than a duration, and never delete the last snapshot proved restorable (the
// only one whose most recent drill passed). The decision is a pure function of the snapshots,
// the drill history and an injected time; Apply carries it out and Report says what it deleted
// and why.
//
// Only complete snapshots of the target count: a store's List leaves out damaged snapshots
// (unreadable metadata) and foreign ones (another target's), so they never take a keepLast
// place from a good one, and retention never deletes them: they stay, for a person to look at,
// and the audit's backup-integrity check fails until someone removes them. So a damaged newest
// snapshot can never cost the newest good one.
package retention
