package verify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubectl runs kubectl against the test control plane.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+requireEnv(t, "KUBECONFIG"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// syncScrape runs the binary under test as the `sync` controller against a real kube-apiserver
// (KUBECONFIG, E2E_API_SERVER and E2E_CA_FILE from tests/e2e/control-plane.sh), with the
// emulator validating its tokens by TokenReview, until it has synced one SPC and failed
// another; then returns its /metrics.
func syncScrape(t *testing.T, emu *Emulator) *Scrape {
	t.Helper()
	ca, err := os.ReadFile(requireEnv(t, "E2E_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "-f", filepath.Join("testdata", "sync-fixtures.yaml"))
	kubectl(t, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/secretproviderclasses.secrets-store.csi.x-k8s.io")
	reviewer := strings.TrimSpace(kubectl(t, "-n", "default", "create", "token", "verify-token-reviewer"))
	emu.Admin(t, "seed", map[string]any{
		"auth_methods": []any{map[string]any{"type": "k8s", "access_id": "p-verify-k8s",
			"config_name": "verify-cluster", "bound_namespaces": []string{"team-a"}, "audience": "akeyless"}},
		"k8s_auth_configs": []any{map[string]any{"name": "verify-cluster",
			"api_server": requireEnv(t, "E2E_API_SERVER"), "ca_cert_pem": string(ca), "token_reviewer_jwt": reviewer}},
		"grants": []any{map[string]any{"access_id": "p-verify-k8s", "path": "/verify/*"}},
	})
	kubectl(t, "apply", "-f", filepath.Join("testdata", "sync-spcs.yaml"))

	argv := []string{requireEnv(t, "PROVIDER_BIN"), "sync", "--akeyless-url", emu.URL,
		"--leader-election-namespace", "default", "--leader-election-lease", "verify-metrics-contract",
		"--lease-duration", "4s", "--renew-deadline", "3s", "--retry-period", "1s",
		"--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json"}
	if runner := os.Getenv("PROVIDER_RUNNER"); runner != "" {
		argv = append(strings.Fields(runner), argv...)
	}
	logs := &lockedBuffer{}
	exited := startWithEnv(t, "sync", argv, []string{"KUBECONFIG=" + requireEnv(t, "KUBECONFIG")}, logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sync log:\n%s", logs.String())
		}
	})
	var metricsURL string
	waitFor(t, "the sync controller's start-up log line", 60*time.Second, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("sync exited:\n%s", logs.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			fields, _ := line["fields"].(map[string]any)
			if fields == nil {
				fields = line
			}
			if fields["message"] == "akeyless-csi-provider sync starting" {
				metricsURL = fmt.Sprintf("http://%v/metrics", fields["metrics"])
				return true, ""
			}
		}
		return false, logs.String()
	})
	p := &Provider{MetricsURL: metricsURL}
	var scrape *Scrape
	waitFor(t, "a synced SPC and a failed one in the sync controller's /metrics", 120*time.Second, func() (bool, string) {
		scrape = p.ScrapeMetrics(t)
		ok := strings.Contains(scrape.Text, `akeyless_csi_provider_sync_last_success_timestamp_seconds{namespace="team-a",name="synced"}`)
		failed := strings.Contains(scrape.Text, `akeyless_csi_provider_sync_failures_total{reason="NotFound"}`)
		var syncLines []string
		for _, l := range strings.Split(scrape.Text, "\n") {
			if strings.HasPrefix(l, "akeyless_csi_provider_sync_") {
				syncLines = append(syncLines, l)
			}
		}
		return ok && failed, strings.Join(syncLines, "\n")
	})
	// The synced Secret holds the item's value.
	if got := kubectl(t, "-n", "team-a", "get", "secret", "synced-password", "-o", "jsonpath={.data.password}"); got != "Y3VycmVudC12YWx1ZQ==" {
		t.Errorf("synced Secret: password %q, want base64 of current-value", got)
	}
	return scrape
}
