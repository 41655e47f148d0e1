// Package push sends a drill's metrics to a Prometheus Pushgateway, for drills that run as
// Kubernetes Jobs (`firedrill drill` in a CronJob) where no `firedrill serve` is there to be
// scraped. The metrics are the ones serve exports (reports/metrics), grouped by job and target.
package push
