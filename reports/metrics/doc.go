// Package metrics turns drill results, snapshot results and audit findings into Prometheus
// metrics on a registry the caller owns (firedrill serve injects a private one). It observes
// the models in reports and checks only; it never runs anything itself.
package metrics
