// Package drill is the restore drill: pick the newest complete snapshot of a target, clone it
// into a private scratch directory, start a throwaway database on it through a runtime that
// isolates it from production (and prove from inside that it sees nothing of it), run the integrity checks, time every phase against the RTO, and always tear down.
package drill
