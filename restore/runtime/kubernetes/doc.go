// Package kubernetes is the drill runtime that runs the throwaway database as a pod on the
// scratch PVCs a CSI source materialised: a ConfigMap with the backup label and the server's
// own configuration, a NetworkPolicy denying all egress, an init container that prepares the
// copy and one that proves (rather than assumes) that production's endpoints are out of reach,
// and the server itself with no ServiceAccount token, no capabilities and a read-only root.
package kubernetes
