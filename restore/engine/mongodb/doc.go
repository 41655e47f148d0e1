// Package mongodb is firedrill's MongoDB knowledge for snapshots: fsyncLock before the cut and
// fsyncUnlock after it, through the official Go driver. Unlike a MySQL lock, an fsync lock
// outlives the connection that took it, so the unlock is retried on every path.
//
// No MongoDB server can be installed on firedrill's build machines: the tests against a real
// server run only where FIREDRILL_TEST_MONGODB_URI names one.
package mongodb
