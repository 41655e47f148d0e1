// Package builtin registers the engines firedrill ships, one line each, in the order help and
// error messages list them. Import it for its side effect wherever engines are looked up by
// name (validation, the snapshot core, the audit); restore/engine itself never imports an engine.
package builtin
