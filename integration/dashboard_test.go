package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/reports/metrics"
)

var dashboardFile = filepath.Join("..", "deploy", "grafana", "firedrill-dashboard.json")

// dashboard is the part of Grafana's dashboard JSON the tests look at.
type dashboard struct {
	UID           string           `json:"uid"`
	Title         string           `json:"title"`
	SchemaVersion int              `json:"schemaVersion"`
	Panels        []dashboardPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardPanel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource *datasourceRef   `json:"datasource"`
	Panels     []dashboardPanel `json:"panels"` // a collapsed row's
	Targets    []struct {
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows: a collapsed row keeps its panels inside it.
func allPanels(ps []dashboardPanel) []dashboardPanel {
	var out []dashboardPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// The dashboard imports anywhere: the data source and the targets are variables (targets from
// label_values(firedrill_rpo_target_seconds, target)), every query goes through the data source
// variable and filters on the target variable, and the sections issue 11 asks for are there.
func TestDashboardIsPortable(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and a schemaVersion near 39", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		q := string(v.Query)
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &obj); err == nil {
				q = obj.Query
			}
		}
		vars[v.Name] = v.Type + " " + q
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query through ${datasource}", v.Name)
		}
	}
	if vars["datasource"] != "datasource prometheus" {
		t.Errorf("datasource variable: %q, want a datasource variable of type prometheus", vars["datasource"])
	}
	if vars["target"] != "query label_values(firedrill_rpo_target_seconds, target)" {
		t.Errorf("target variable: %q, want label_values(firedrill_rpo_target_seconds, target)", vars["target"])
	}

	ids := map[int]string{}
	var titles []string
	for _, p := range allPanels(d.Panels) {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		titles = append(titles, p.Title)
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want ${datasource}", p.Title, p.Datasource)
		}
		for _, q := range p.Targets {
			if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query's datasource is %+v, want ${datasource}", p.Title, q.Datasource)
			}
			if strings.Contains(q.Expr, "firedrill_") && strings.Count(q.Expr, `target=~"$target"`) < strings.Count(q.Expr, "firedrill_") {
				t.Errorf("panel %q: a firedrill series is not filtered by the target variable: %s", p.Title, q.Expr)
			}
		}
	}
	for _, want := range []string{"RPO headroom", "Drill history", "Recovery time vs RTO", "WAL segments archived", "Copies vs policy"} {
		if !slices.ContainsFunc(titles, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no panel titled like %q (panels: %v)", want, titles)
		}
	}
}

// Every metric the dashboard and the alert rules query is one firedrill serve exports: a renamed
// metric breaks this test, not somebody's dashboard or pager.
func TestDashboardAndRulesReferenceOnlyExportedMetrics(t *testing.T) {
	exported := metrics.Names()
	known := func(name string) bool {
		if name == "up" || slices.Contains(exported, name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(exported, base) {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	check := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !known(n) {
				t.Errorf("%s: %s is not a metric firedrill exports (metrics.Names()): %s", where, n, expr)
			}
		}
	}

	d := readDashboard(t)
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			check("dashboard panel "+p.Title, q.Expr)
		}
	}
	for _, v := range d.Templating.List {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &obj); err != nil || obj.Query == "" {
			continue
		}
		// label_values(METRIC, LABEL): only its first argument is a series selector.
		m := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]\w*\)$`).FindStringSubmatch(obj.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(METRIC, LABEL)", v.Name, obj.Query)
			continue
		}
		check("dashboard variable "+v.Name, m[1])
	}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			check("alert "+r.Alert, r.Expr)
		}
	}
	for _, n := range exported {
		if !used[n] && !used[n+"_count"] {
			t.Logf("not on the dashboard nor in a rule: %s", n)
		}
	}
}

// metricNames returns the metric names a PromQL expression selects, in order of appearance: the
// identifiers that are not functions, aggregations, keywords, label names (in braces or in
// by/without/on/ignoring/group_left/group_right lists), durations or Grafana variables.
func metricNames(expr string) []string {
	keywords := map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true,
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true,
	}
	grouping := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	// skipTo returns the index just past the bracket closing the one at i, skipping strings.
	skipTo := func(i int, open, close byte) int {
		depth := 0
		for ; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				i = skipString(expr, i) - 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	nameMatcher := regexp.MustCompile(`__name__\s*=\s*"([^"]+)"`)
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{': // label matchers; {__name__="x"} selects x
			j := skipTo(i, '{', '}')
			for _, m := range nameMatcher.FindAllStringSubmatch(expr[i:j], -1) {
				names = append(names, m[1])
			}
			i = j
		case c == '[':
			i = skipTo(i, '[', ']')
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(expr) && expr[i] == '{' {
				i = skipTo(i, '{', '}')
			}
			for i < len(expr) && isPart(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.': // a number or a duration (1e15, 0x1f, offset 5m)
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			call := k < len(expr) && expr[k] == '('
			lower := strings.ToLower(word)
			switch {
			case grouping[lower] && call:
				j = skipTo(k, '(', ')')
			case keywords[lower] || call:
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

// skipString returns the index just past the string literal starting at i.
func skipString(s string, i int) int {
	quote := s[i]
	for i++; i < len(s); i++ {
		if s[i] == '\\' && quote != '`' {
			i++
			continue
		}
		if s[i] == quote {
			return i + 1
		}
	}
	return i
}

func TestDashboardMetricNamesExtraction(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`firedrill_backup_age_seconds > ignoring(source) group_left firedrill_rpo_target_seconds`,
			[]string{"firedrill_backup_age_seconds", "firedrill_rpo_target_seconds"}},
		{`sum without (kind) (firedrill_backup_copies) < firedrill_backup_copies_required`,
			[]string{"firedrill_backup_copies", "firedrill_backup_copies_required"}},
		{`increase(firedrill_wal_archive_failed_total{target=~"$target",x="a}b"}[10m]) > 0`,
			[]string{"firedrill_wal_archive_failed_total"}},
		{`(time() - firedrill_wal_last_archived_timestamp_seconds > 900) and (firedrill_wal_archive_pending_segments > 0)`,
			[]string{"firedrill_wal_last_archived_timestamp_seconds", "firedrill_wal_archive_pending_segments"}},
		{`histogram_quantile(0.9, sum by (target, le) (rate(firedrill_drill_duration_seconds_bucket[$__rate_interval])))`,
			[]string{"firedrill_drill_duration_seconds_bucket"}},
		{`up{job="firedrill"} == 0 or absent(up{job="firedrill"})`, []string{"up", "up"}},
		{`max_over_time(firedrill_backup_size_bytes[7d:5m] offset 1h) * 35 * 86400 > 1e15`,
			[]string{"firedrill_backup_size_bytes"}},
		{`label_replace(firedrill_copy_immutable, "where", "$1", "source", "(.*)") == bool 0`,
			[]string{"firedrill_copy_immutable"}},
		{`a / on (target) group_right (source) b unless c`, []string{"a", "b", "c"}},
		{`{__name__="firedrill_x"}`, []string{"firedrill_x"}},
		{`firedrill_a offset 5m + firedrill_b`, []string{"firedrill_a", "firedrill_b"}},
		{`vector(1)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("metricNames = %q, want %q", got, tt.want)
			}
		})
	}
}
