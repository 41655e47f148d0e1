// Package checks holds the integrity checks run against a restored database (amcheck, checksums,
// row counts, custom SQL, freshness): one file per check, registered by name. Each check says
// which engines it serves (BuildFor skips, and names, those that do not serve the drilled one).
// Checks produce typed findings; they import nothing else of firedrill's.
package checks
