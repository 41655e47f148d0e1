// Package csi takes snapshots as Kubernetes CSI VolumeSnapshots: it freezes the database, creates
// one VolumeSnapshot per volume (data, and WAL when it has its own PVC), thaws as soon as the
// storage reports the cut (status.creationTime), then waits for readyToUse. What the engine
// recorded under the freeze (backup_label, LSNs, binlog position, frozen time) is kept as
// annotations on the VolumeSnapshots, so they are self-describing without firedrill.
//
// GroupDriver cuts the volumes of several databases in one VolumeGroupSnapshot
// (groupsnapshot.storage.k8s.io/v1) where the cluster supports it: freeze all, one atomic cut,
// thaw all at its creationTime. The member VolumeSnapshots the snapshot controller makes are
// labelled and annotated like any other, so listing, drills and retention treat them alike.
package csi
