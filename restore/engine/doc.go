// Package engine is per-database knowledge: how to freeze and thaw a database so that a copy of
// its files is consistent, and how to start a throwaway copy of it that can never touch
// production. Each engine lives in a subpackage (restore/engine/postgres, ...); this package holds
// what the snapshot drivers and the drill need from any engine, and the registry of engines
// (Register, Lookup, Names): one Spec per engine, the single source of its modes per driver,
// freezer, DSN check and audit checks, so that nothing decides by an engine's name.
package engine
