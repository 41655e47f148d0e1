// Package audit is the auditor: checks on the live estate that need no restore (WAL archiving,
// backup age, sizes, 3-2-1 copies, drill recency). The policy they enforce lives in audit/policy.
package audit
