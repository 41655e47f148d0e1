// Package checks holds the integrity checks run against a restored database (amcheck, checksums,
// row counts, custom SQL, freshness): one file per check, registered by name. Checks produce typed
// findings; they import nothing else of firedrill's.
package checks
