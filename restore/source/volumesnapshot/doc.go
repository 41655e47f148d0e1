// Package volumesnapshot is the drill source for CSI VolumeSnapshots: it lists a target's
// restorable snapshots (firedrill's own, or other tools' picked by a label selector, reading
// CloudNativePG's backup-label annotations), and materialises one into scratch PVCs through
// Retain copies bound in a scratch namespace, so that nothing a drill deletes can delete
// production's snapshot data.
package volumesnapshot
