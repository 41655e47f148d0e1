package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// walCounters are pg_stat_archiver's counters as the last audit read them.
type walCounters struct {
	archived, failed float64
	// statsReset is when PostgreSQL's statistics were last reset: the counters count from it.
	statsReset time.Time
}

// stateCollector computes, at scrape time, what is not a stored number: backup ages (so they
// keep growing between audits) and pg_stat_archiver's counters (read from PostgreSQL, not
// incremented here, so exposed as const counters rather than as gauges named _total).
type stateCollector Metrics

var (
	descBackupAge = prometheus.NewDesc(nameBackupAge,
		"How old the newest good backup at this source is now: the time since firedrill_backup_last_timestamp_seconds, growing between audits; compare with firedrill_rpo_target_seconds (+Inf: the source holds no good backup; NaN: not read yet).",
		[]string{"target", "source"}, nil)
	descWALArchived = prometheus.NewDesc(nameWALArchived,
		"WAL segments PostgreSQL archived since its statistics were last reset (pg_stat_archiver.archived_count, as of the last audit). Absent until the first audit read it.",
		[]string{"target"}, nil)
	descWALFailed = prometheus.NewDesc(nameWALFailed,
		"Failed attempts to archive a WAL segment since PostgreSQL's statistics were last reset (pg_stat_archiver.failed_count, as of the last audit); any increase means archive_command failed. Absent until the first audit read it.",
		[]string{"target"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBackupAge
	ch <- descWALArchived
	ch <- descWALFailed
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := unix(c.now())
	for target, sources := range c.backupTimes {
		for source, at := range sources {
			age := nan
			switch {
			case at == 0:
				age = math.Inf(1)
			case !math.IsNaN(at):
				// A backup dated ahead (within the audit's tolerance) is as good as new.
				age = max(now-at, 0)
			}
			ch <- prometheus.MustNewConstMetric(descBackupAge, prometheus.GaugeValue, age, target, source)
		}
	}
	for target, w := range c.wal {
		ch <- counter(descWALArchived, w.archived, w.statsReset, target)
		ch <- counter(descWALFailed, w.failed, w.statsReset, target)
	}
}

// counter is a const counter whose created timestamp, when known, is the statistics reset: a
// reset to zero is then a new counter's start, as rate() expects.
func counter(d *prometheus.Desc, v float64, created time.Time, target string) prometheus.Metric {
	if created.IsZero() {
		return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, target)
	}
	return prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, v, created, target)
}
