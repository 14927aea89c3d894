package verify

// The metrics contract: the Grafana dashboard and the alert rules use only metrics, labels and
// label values that a real provider exposes. Every PromQL expression is parsed with Prometheus's
// own parser; every metric selector, matcher, grouping and vector-matching label is then looked
// up in a scrape of a provider that has served a few mounts of each outcome.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"google.golang.org/grpc/codes"
)

var (
	chartDir      = filepath.Join("..", "..", "deploy", "helm", "akeyless-csi-provider")
	rulesFile     = filepath.Join(chartDir, "files", "prometheus-rules.yaml")
	dashboardFile = filepath.Join(chartDir, "files", "grafana-dashboard.json")
	// Labels Prometheus attaches to every scraped series (the target's), not the provider.
	targetLabels = map[string]bool{"job": true, "instance": true}
)

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func ruleQueries(t *testing.T) []query {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	var out []query
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			out = append(out, query{where: "alert " + r.Alert, expr: r.Expr})
		}
	}
	if len(out) < 4 {
		t.Fatalf("%s: %d rules, want the mount, unreachable, auth and sync alerts", rulesFile, len(out))
	}
	return out
}

// grafanaVars replaces the dashboard's variables with what Grafana sends.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"${job}", ".+", "$job", ".+", "${instance}", ".+", "$instance", ".+")

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []query
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, query{where: "panel " + p.Title, expr: grafanaVars.Replace(tg.Expr)})
		}
	}
	// Variables: label_values(SELECTOR, LABEL) is checked as `count by (LABEL) (SELECTOR)`.
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range dash.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil || q.Query == "" {
			continue // the datasource variable
		}
		m := labelValues.FindStringSubmatch(grafanaVars.Replace(q.Query))
		if m == nil {
			t.Errorf("dashboard variable %s: unexpected query %q", v.Name, q.Query)
			continue
		}
		out = append(out, query{where: "variable " + v.Name, expr: fmt.Sprintf("count by (%s) (%s)", m[2], m[1])})
	}
	if len(out) < 15 {
		t.Fatalf("%s: only %d queries", dashboardFile, len(out))
	}
	return out
}

// use is what one expression needs from the scrape.
type use struct {
	where    string
	metric   string
	matchers []*labels.Matcher
	labels   []string // label names that must exist on the metric's series
}

// uses walks an expression: each vector selector, with the labels its enclosing aggregations
// group by and the binary operations it takes part in match on.
func uses(t *testing.T, q query) []use {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", q.where, err, q.expr)
		return nil
	}
	var out []use
	var walk func(node parser.Node, inherited []string)
	walk = func(node parser.Node, inherited []string) {
		switch n := node.(type) {
		case *parser.VectorSelector:
			var name string
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName {
					name = m.Value
				}
			}
			if name == "" {
				t.Errorf("%s: a selector without a metric name: %s", q.where, n)
				return
			}
			out = append(out, use{where: q.where, metric: name, matchers: n.LabelMatchers, labels: inherited})
			return
		case *parser.AggregateExpr:
			inherited = append(append([]string(nil), inherited...), n.Grouping...)
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil {
				if vm.On {
					// on(...) labels must be on both sides.
					inherited = append(append([]string(nil), inherited...), vm.MatchingLabels...)
				} else {
					for _, l := range vm.MatchingLabels {
						// ignoring(...) labels must be on at least one side.
						if !onEitherSide(t, n, l) {
							t.Errorf("%s: ignoring(%s): no series on either side has that label", q.where, l)
						}
					}
				}
				if len(vm.Include) > 0 {
					walk(n.LHS, inherited)
					walk(n.RHS, append(append([]string(nil), inherited...), vm.Include...))
					return
				}
			}
		}
		for child := range parser.ChildrenIter(node) {
			walk(child, inherited)
		}
	}
	walk(expr, nil)
	return out
}

// onEitherSide is filled in by TestMetricsContract before the walk.
var onEitherSide func(t *testing.T, n *parser.BinaryExpr, label string) bool

// index is the scrape by series name: label name to the set of its values.
type index map[string]map[string]map[string]bool

func indexScrape(s *Scrape) index {
	idx := index{}
	for _, series := range s.Series {
		name := series.Get(labels.MetricName)
		if idx[name] == nil {
			idx[name] = map[string]map[string]bool{}
		}
		series.Range(func(l labels.Label) {
			if l.Name == labels.MetricName {
				return
			}
			if idx[name][l.Name] == nil {
				idx[name][l.Name] = map[string]bool{}
			}
			idx[name][l.Name][l.Value] = true
		})
	}
	return idx
}

// check reports what u needs that the scrape lacks.
func (idx index) check(u use) []string {
	var problems []string
	series, ok := idx[u.metric]
	if !ok {
		return []string{fmt.Sprintf("%s: metric %s is not exposed", u.where, u.metric)}
	}
	for _, m := range u.matchers {
		if m.Name == labels.MetricName {
			continue
		}
		if targetLabels[m.Name] {
			continue
		}
		values, ok := series[m.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %s has no label %q", u.where, u.metric, m.Name))
			continue
		}
		switch m.Type {
		case labels.MatchEqual, labels.MatchRegexp:
			// The value (or some value the regexp matches) must occur.
			found := false
			for v := range values {
				found = found || m.Matches(v)
			}
			if !found {
				problems = append(problems, fmt.Sprintf("%s: no %s series has %s (values seen: %v)",
					u.where, u.metric, m, keys(values)))
			}
		}
	}
	for _, l := range u.labels {
		if targetLabels[l] || l == labels.MetricName {
			continue
		}
		if _, ok := series[l]; !ok {
			problems = append(problems, fmt.Sprintf("%s: %s has no label %q to group or match by (labels: %v)",
				u.where, u.metric, l, keys(series)))
		}
	}
	return problems
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// contractScenario serves mounts of each outcome the dashboard and alerts look at: success (a
// login, then a cached token), NotFound, AuthFailed (a refused login), Throttled (429s, retried),
// BackendUnavailable (nothing listening) and InvalidConfig.
func contractScenario(t *testing.T, emu *Emulator, p *Provider) {
	t.Helper()
	objects := "- secretPath: /verify/password\n  fileName: password\n"
	mount := func(uid string, params map[string]string, key string, want codes.Code) {
		t.Helper()
		all := map[string]string{"akeylessAccessID": accessID, "objects": objects}
		for k, v := range params {
			all[k] = v
		}
		req := MountRequest{Pod: Pod{Namespace: "team-a", Name: uid, UID: uid, ServiceAccount: "web"},
			Parameters: all, Secrets: map[string]string{"akeylessAccessKey": key}}
		_, st := p.Mount(t, req)
		switch {
		case want == codes.OK && st != nil:
			t.Fatalf("mount %s: %v", uid, st)
		case want != codes.OK && (st == nil || st.Code() != want):
			t.Fatalf("mount %s: %v, want %s", uid, st, want)
		}
	}
	mount("ok", nil, accessKey, codes.OK)
	mount("ok", nil, accessKey, codes.OK) // the cached token
	mount("not-found", map[string]string{"objects": "- secretPath: /verify/nothing-here\n"}, accessKey, codes.NotFound)
	mount("refused", nil, "a-wrong-key", codes.Unauthenticated)
	emu.Admin(t, "fault", map[string]any{"path": "/get-secret-value", "status": 429, "count": 50})
	mount("throttled", nil, accessKey, codes.ResourceExhausted)
	emu.Admin(t, "clear-faults", map[string]any{})
	mount("unreachable", map[string]string{"akeylessGatewayURL": "http://" + closedPort(t)}, accessKey, codes.Internal)
	mount("invalid", map[string]string{"objects": "- fileName: no-secret-path\n"}, accessKey, codes.InvalidArgument)
}

func TestMetricsContract(t *testing.T) {
	emu := startEmulator(t)
	p := startProvider(t, emu.URL)
	contractScenario(t, emu, p)
	scrape := p.ScrapeMetrics(t)
	// The sync controller's metrics come from the sync process (same families, its samples).
	synced := syncScrape(t, emu)
	scrape.Series = append(scrape.Series, synced.Series...)
	idx := indexScrape(scrape)

	seriesLabels := func(node parser.Node) map[string]bool {
		out := map[string]bool{}
		parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				for l := range idx[vs.Name] {
					out[l] = true
				}
			}
			return nil
		})
		return out
	}
	onEitherSide = func(_ *testing.T, n *parser.BinaryExpr, label string) bool {
		return targetLabels[label] || seriesLabels(n.LHS)[label] || seriesLabels(n.RHS)[label]
	}

	queries := append(ruleQueries(t), dashboardQueries(t)...)
	var problems []string
	metrics := map[string]bool{}
	checked := 0
	for _, q := range queries {
		for _, u := range uses(t, q) {
			problems = append(problems, idx.check(u)...)
			metrics[u.metric] = true
			checked++
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	// Every family the provider exposes is on the dashboard (a new metric gets a panel).
	for family := range scrape.Types {
		found := false
		for m := range metrics {
			found = found || m == family || strings.TrimPrefix(m, family) != m && strings.HasPrefix(m, family+"_")
		}
		if !found {
			t.Errorf("metric family %s is on neither the dashboard nor an alert", family)
		}
	}
	t.Logf("%d queries, %d selectors, %d metrics checked against %d scraped series: %d problems",
		len(queries), checked, len(metrics), len(scrape.Series), len(problems))
}
