package push

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/metrics"
)

// Timeout bounds one push.
const Timeout = 30 * time.Second

// targetLabel is the grouping label and the metrics' own label it replaces.
const targetLabel = "target"

// Push sends the metrics of drill r to the Pushgateway at gatewayURL (http(s)://host:port, no
// /metrics path; user:password@ in it becomes basic authentication), under the grouping key
// job=job, target=r.Target: /metrics/job/<job>/target/<target>. targets are the configured
// targets (their RTO, checks and phases); r's need not be among them.
//
// It POSTs (the Pushgateway's "add"): a metric family replaces the group's family of that name,
// the others stay. A family this drill measured nothing for (every series NaN, or a histogram
// with no observation) is left out, so a failed drill keeps the last pushed
// firedrill_drill_last_success_timestamp_seconds, as serve would. The duration histogram holds
// this drill's observation only: the Pushgateway keeps the last push, not a running count.
func Push(ctx context.Context, gatewayURL, job string, r *reports.DrillResult, targets []metrics.Target) error {
	if r == nil || r.Target == "" {
		return errors.New("while pushing drill metrics: the result names no target")
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, targets)
	if err != nil {
		return fmt.Errorf("while building the drill metrics of %s: %w", r.Target, err)
	}
	m.ObserveDrill(r)

	p, where, err := pusher(gatewayURL, job)
	if err != nil {
		return err
	}
	p = p.Grouping(targetLabel, r.Target).
		Gatherer(drillOf(reg, r, targets)).
		// The text format, so a person (and a test) can read what was pushed.
		Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := p.AddContext(ctx); err != nil {
		return fmt.Errorf("while pushing the drill metrics of %s to the Pushgateway %s: %w", r.Target, where, err)
	}
	return nil
}

// pusher builds the Pusher, moving credentials out of the URL into basic authentication, so
// that the URL the client library quotes in its errors holds none. where is the URL to name.
func pusher(gatewayURL, job string) (p *push.Pusher, where string, err error) {
	u, err := url.Parse(gatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", errors.New("while pushing drill metrics: the Pushgateway URL is not http(s)://host:port")
	}
	user := u.User
	u.User = nil
	p = push.New(u.String(), job)
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	return p, u.Redacted(), nil
}

// drillOf gathers the families a drill sets, for r's target only, without their target label
// (the grouping key carries it; the client refuses a metric that repeats a grouping label).
func drillOf(g prometheus.Gatherer, r *reports.DrillResult, targets []metrics.Target) prometheus.Gatherer {
	checksOf := map[string]bool{}
	for _, t := range targets {
		if t.Name == r.Target {
			for _, c := range t.Checks {
				checksOf[c] = true
			}
		}
	}
	for _, f := range r.Checks {
		checksOf[f.Check] = true
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		if err != nil {
			return nil, err
		}
		var out []*dto.MetricFamily
		for _, mf := range mfs {
			if !drillFamily(mf.GetName()) {
				continue
			}
			mf.Metric = slices.DeleteFunc(mf.Metric, func(m *dto.Metric) bool {
				if label(m, targetLabel) != r.Target && mf.GetName() != "firedrill_build_info" {
					return true
				}
				// The audit's checks are serve's business, not a drill's.
				if c := label(m, "check"); c != "" && !checksOf[c] {
					return true
				}
				m.Label = slices.DeleteFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == targetLabel })
				return false
			})
			if measured(mf) {
				out = append(out, mf)
			}
		}
		return out, nil
	})
}

// drillFamily tells the families ObserveDrill sets, and the build information.
func drillFamily(name string) bool {
	for _, p := range []string{"firedrill_drill_", "firedrill_rto_", "firedrill_check_", "firedrill_build_info"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// measured reports whether a family has a series with a value: not every one NaN, and a
// histogram with at least one observation.
func measured(mf *dto.MetricFamily) bool {
	for _, m := range mf.GetMetric() {
		switch {
		case m.Gauge != nil && !math.IsNaN(m.Gauge.GetValue()),
			m.Counter != nil && !math.IsNaN(m.Counter.GetValue()),
			m.Histogram != nil && m.Histogram.GetSampleCount() > 0,
			m.Untyped != nil && !math.IsNaN(m.Untyped.GetValue()):
			return true
		}
	}
	return false
}
