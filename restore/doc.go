// Package restore is the restore pipeline and what it restores from: the snapshot-taking core
// (restore/snapshot), per-database knowledge (restore/engine), where throwaway databases run
// (restore/runtime) and the drill itself (restore/drill).
package restore
