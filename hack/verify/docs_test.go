package verify

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

const readmeURL = "https://github.com/akeylesslabs/akeyless-csi-provider/blob/main/README.md"

var repoRoot = filepath.Join("..", "..")

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// readmeAnchors returns the README's link targets: GitHub's heading anchors and explicit
// <a id="…"> / <a name="…"> anchors.
func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	text := readFile(t, filepath.Join(repoRoot, "README.md"))
	inFence := false
	strip := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if !inFence && strings.HasPrefix(line, "#") {
			title := strings.TrimSpace(strings.TrimLeft(line, "#"))
			anchors[strings.ReplaceAll(strip.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
		}
	}
	for _, m := range regexp.MustCompile(`<a (?:id|name)="([^"]+)"`).FindAllStringSubmatch(text, -1) {
		anchors[m[1]] = true
	}
	return anchors
}

// errorCodes are the mount error codes (src/error.rs); syncReasons the sync controller's own
// failure reasons (src/sync/context.rs), besides the mount codes.
func errorCodes(t *testing.T) []string {
	t.Helper()
	src := readFile(t, filepath.Join(repoRoot, "src", "error.rs"))
	var out []string
	for _, m := range regexp.MustCompile(`ErrorCode::(\w+) => "(\w+)"`).FindAllStringSubmatch(src, -1) {
		out = append(out, m[2])
	}
	if len(out) < 8 {
		t.Fatalf("src/error.rs: found codes %v", out)
	}
	return out
}

func syncReasons(t *testing.T) []string {
	t.Helper()
	src := readFile(t, filepath.Join(repoRoot, "src", "sync", "context.rs"))
	body := regexp.MustCompile(`(?s)fn reason\(&self\) -> &'static str \{(.*?)\n    \}`).FindStringSubmatch(src)
	if body == nil {
		t.Fatal("src/sync/context.rs: no fn reason")
	}
	var out []string
	for _, m := range regexp.MustCompile(`=> "(\w+)"`).FindAllStringSubmatch(body[1], -1) {
		out = append(out, m[1])
	}
	if len(out) < 5 {
		t.Fatalf("src/sync/context.rs: found reasons %v", out)
	}
	return append(out, errorCodes(t)...)
}

// TestRunbooks: every alert has a summary, a description and a runbook_url into the README's
// troubleshooting entries; a link templated on the code or reason label resolves for every
// value the provider can give that label.
func TestRunbooks(t *testing.T) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	anchors := readmeAnchors(t)
	expand := map[string][]string{
		"{{ $labels.code | toLower }}":   errorCodes(t),
		"{{ $labels.reason | toLower }}": syncReasons(t),
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("alert %s has no %s", r.Alert, k)
				}
			}
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity", r.Alert)
			}
			url := r.Annotations["runbook_url"]
			fragment, ok := strings.CutPrefix(url, readmeURL+"#")
			if !ok {
				t.Errorf("alert %s: runbook_url %q does not point into the README", r.Alert, url)
				continue
			}
			fragments := []string{fragment}
			for tmpl, values := range expand {
				if strings.Contains(fragment, tmpl) {
					fragments = nil
					for _, v := range values {
						fragments = append(fragments, strings.ReplaceAll(fragment, tmpl, strings.ToLower(v)))
					}
				}
			}
			for _, f := range fragments {
				if strings.Contains(f, "{{") {
					t.Errorf("alert %s: runbook_url template %q is not one the test knows", r.Alert, f)
				} else if !anchors[f] {
					t.Errorf("alert %s: README has no anchor #%s", r.Alert, f)
				}
			}
			t.Logf("%s: %d README anchors", r.Alert, len(fragments))
		}
	}
}

func helmTemplate(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	cmd := exec.Command(requireEnv(t, "HELM"), append([]string{"template", "akeyless-csi-provider", chartDir, "-n", "kube-system"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

func find(docs []map[string]any, kind string) map[string]any {
	for _, d := range docs {
		if d["kind"] == kind {
			return d
		}
	}
	return nil
}

// TestChartShipsTheRulesAndDashboard: the chart's PrometheusRule is the rules file (with the
// runbook base replaced) and its ConfigMap is the dashboard, labelled for Grafana's sidecar;
// both are off by default.
func TestChartShipsTheRulesAndDashboard(t *testing.T) {
	for _, d := range helmTemplate(t) {
		if d["kind"] == "PrometheusRule" || d["kind"] == "ConfigMap" {
			t.Errorf("%s rendered by default", d["kind"])
		}
	}
	docs := helmTemplate(t, "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.dashboard.enabled=true",
		"--set", "metrics.prometheusRule.runbookBaseURL=https://docs.example.com/csi/README.md",
		"--set", "metrics.prometheusRule.labels.release=kube-prometheus-stack",
		"--set", "metrics.dashboard.namespace=monitoring")

	rule := find(docs, "PrometheusRule")
	if rule == nil {
		t.Fatal("no PrometheusRule rendered")
	}
	var want map[string]any
	text := strings.ReplaceAll(readFile(t, rulesFile), readmeURL, "https://docs.example.com/csi/README.md")
	if err := yaml.Unmarshal([]byte(text), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule["spec"], want) {
		t.Errorf("PrometheusRule spec differs from %s (runbook base replaced)", rulesFile)
	}
	meta := rule["metadata"].(map[string]any)
	if meta["labels"].(map[string]any)["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels %v lack prometheusRule.labels", meta["labels"])
	}

	cm := find(docs, "ConfigMap")
	if cm == nil {
		t.Fatal("no dashboard ConfigMap rendered")
	}
	meta = cm["metadata"].(map[string]any)
	if meta["namespace"] != "monitoring" || meta["labels"].(map[string]any)["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap metadata %v: want namespace monitoring, label grafana_dashboard=1", meta)
	}
	data := cm["data"].(map[string]any)["akeyless-csi-provider.json"].(string)
	var got, file any
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatalf("ConfigMap dashboard is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &file); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, file) {
		t.Errorf("ConfigMap dashboard differs from %s", dashboardFile)
	}
}
