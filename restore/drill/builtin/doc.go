// Package builtin lists the engine drills every build has: one drill.RegisterEngine line per
// engine other than PostgreSQL (whose throwaway the runtimes start themselves). Import it for
// its side effect.
package builtin
