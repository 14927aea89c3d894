// Package webhook tests `akeyless-csi-provider webhook` against a real kube-apiserver and the
// real SecretProviderClass CRD of the driver release under test. The process runs as the
// ServiceAccount of deploy/manifests/akeyless-csi-provider-webhook.yaml (the chart's rendering)
// with exactly that RBAC and the Deployment's flags, and the API server calls it through that
// manifest's ValidatingWebhookConfiguration (rules, matchConditions, failurePolicy), changed in
// two ways only: clientConfig names the process on 127.0.0.1 instead of the Service (this
// control plane has no kube-proxy), and a namespaceSelector keeps it to this test's namespace so
// the suite's other packages never meet it. The caBundle starts empty: the process fills it.
//
// Run it through tests/e2e/run.sh, which builds the components and starts the control plane.
package webhook

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	secretsstorev1alpha1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1alpha1"
	spcclient "sigs.k8s.io/secrets-store-csi-driver/pkg/client/clientset/versioned"

	"github.com/akeyless-csi-provider/tests/e2e/suite/internal/harness"
)

const (
	// The webhook's name in the chart's configuration, as the API server's messages quote it.
	webhookName = "validate.secretproviderclasses.akeyless.io"
	nsLabel     = "akeyless-webhook-e2e"
	// latencyApplies is the number of measured applies (each kind) in TestWebhookLatency.
	latencyApplies = 200
	latencyWarmup  = 20
	accessKeyValue = "AKEY-e2e-not-a-real-key-0123456789"
)

var (
	kube       *kubernetes.Clientset
	spcs       *spcclient.Clientset
	warned     *spcclient.Clientset // records the API server's warnings in warnings
	unlimited  *spcclient.Clientset // without client-go's rate limit (5 requests/s), for latency
	warnings   = &recorder{}
	env        map[string]string
	workDir    string
	logDir     string
	runID      string
	ns         string
	saConfig   string // kubeconfig of the webhook's ServiceAccount
	configName string // the ValidatingWebhookConfiguration (from the manifest)
	saName     string
	saNS       string
	chartArgs  []string // the manifest Deployment's container args
	wh         *webhookProc
)

type webhookProc struct {
	proc    *harness.Proc
	addr    string
	health  string
	metrics string
}

// recorder collects the warnings the API server returns (kubectl prints them as "Warning: …").
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, text)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen = nil
	return out
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "webhook e2e setup: "+format+"\n", args...)
	return 1
}

func run(m *testing.M) int {
	var err error
	env, err = harness.MustEnv("E2E_PROVIDER_BIN", "E2E_DRIVER_MODULE_DIR", "KUBECONFIG", "E2E_API_SERVER", "E2E_CA_FILE")
	if err != nil {
		return fail("%v", err)
	}
	workDir, err = os.MkdirTemp(os.Getenv("E2E_WORK_DIR"), "webhook-")
	if err != nil {
		return fail("%v", err)
	}
	runID = strings.ToLower(filepath.Base(workDir)[len("webhook-"):])
	logDir = filepath.Join(workDir, "logs")
	ns = "webhook-" + runID
	if kube, spcs, err = harness.Clients(env["KUBECONFIG"]); err != nil {
		return fail("%v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		return fail("%v", err)
	}
	cfg.WarningHandler = warnings
	if warned, err = spcclient.NewForConfig(cfg); err != nil {
		return fail("%v", err)
	}
	fast := rest.CopyConfig(cfg)
	fast.WarningHandler = nil
	fast.QPS, fast.Burst = 1e6, 1e6
	if unlimited, err = spcclient.NewForConfig(fast); err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	crd := filepath.Join(env["E2E_DRIVER_MODULE_DIR"], "deploy", "secrets-store.csi.x-k8s.io_secretproviderclasses.yaml")
	if err := harness.Apply([]string{crd}, "secretproviderclasses.secrets-store.csi.x-k8s.io"); err != nil {
		return fail("%v", err)
	}
	manifest, _ := filepath.Abs("../../../../deploy/manifests/akeyless-csi-provider-webhook.yaml")
	config, err := applyManifest(manifest)
	if err != nil {
		return fail("manifest: %v", err)
	}
	token, err := harness.ServiceAccountToken(ctx, kube, saNS, saName)
	if err != nil {
		return fail("webhook token: %v", err)
	}
	saConfig = filepath.Join(workDir, "webhook.kubeconfig")
	if err := harness.WriteTokenKubeconfig(saConfig, env["E2E_API_SERVER"], env["E2E_CA_FILE"], token); err != nil {
		return fail("%v", err)
	}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{nsLabel: runID}}}, metav1.CreateOptions{}); err != nil {
		return fail("namespace: %v", err)
	}
	if wh, err = startWebhook(); err != nil {
		return fail("webhook: %v", err)
	}
	defer func() { wh.proc.Stop() }()
	if err := register(ctx, config); err != nil {
		return fail("register: %v", err)
	}
	defer func() {
		_ = kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), configName, metav1.DeleteOptions{})
	}()

	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- webhook log (last 30 lines)\n%s\n--- logs kept in %s\n", wh.proc.Tail(30), logDir)
	}
	return code
}

// applyManifest server-side-applies the manifest's ServiceAccount and RBAC and returns its
// ValidatingWebhookConfiguration (not applied). The Deployment and Service need a kubelet and
// kube-proxy, which this control plane doesn't have; the Deployment's args are kept.
func applyManifest(path string) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var files []string
	var config *admissionregistrationv1.ValidatingWebhookConfiguration
	for i := 0; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		switch obj["kind"] {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			if obj["kind"] == "ServiceAccount" {
				meta := obj["metadata"].(map[string]any)
				saName, saNS = meta["name"].(string), meta["namespace"].(string)
			}
			b, _ := json.Marshal(obj)
			file := filepath.Join(workDir, fmt.Sprintf("manifest-%d.json", i))
			if err := os.WriteFile(file, b, 0o644); err != nil {
				return nil, err
			}
			files = append(files, file)
		case "Deployment":
			var d struct {
				Spec struct {
					Template struct {
						Spec corev1.PodSpec `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			}
			b, _ := json.Marshal(obj)
			if err := json.Unmarshal(b, &d); err != nil || len(d.Spec.Template.Spec.Containers) != 1 {
				return nil, fmt.Errorf("the Deployment has no single container: %v", err)
			}
			chartArgs = d.Spec.Template.Spec.Containers[0].Args
		case "ValidatingWebhookConfiguration":
			config = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, config); err != nil {
				return nil, err
			}
		}
	}
	if config == nil || saName == "" || len(chartArgs) == 0 || len(files) != 3 {
		return nil, fmt.Errorf("%s lacks the ServiceAccount, RBAC, Deployment or configuration", path)
	}
	configName = config.Name
	if len(config.Webhooks) != 1 || config.Webhooks[0].Name != webhookName || len(config.Webhooks[0].MatchConditions) == 0 ||
		config.Webhooks[0].FailurePolicy == nil || *config.Webhooks[0].FailurePolicy != admissionregistrationv1.Ignore {
		return nil, fmt.Errorf("the configuration is not the chart's (one webhook %s, matchConditions, failurePolicy Ignore)", webhookName)
	}
	return config, harness.Apply(files)
}

var (
	addrField = regexp.MustCompile(`"addr":"([^"]+)"`)
	health    = regexp.MustCompile(`"health":"([^"]+)"`)
	metrics   = regexp.MustCompile(`"metrics":"([^"]+)"`)
)

// startWebhook runs the binary with the manifest Deployment's flags, the addresses moved to
// 127.0.0.1 and 127.0.0.1 added to the certificate's names (the API server dials it by IP).
func startWebhook() (*webhookProc, error) {
	var args []string
	var sans string
	for _, a := range chartArgs {
		switch {
		case strings.HasPrefix(a, "--webhook-addr="), strings.HasPrefix(a, "--health-addr="),
			strings.HasPrefix(a, "--metrics-addr="), strings.HasPrefix(a, "--log-format="):
		case strings.HasPrefix(a, "--tls-san="):
			sans = strings.TrimPrefix(a, "--tls-san=")
		default:
			args = append(args, a)
		}
	}
	if args[0] != "webhook" || sans == "" {
		return nil, fmt.Errorf("unexpected Deployment args %q", chartArgs)
	}
	args = append(args, "--webhook-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0",
		"--tls-san=127.0.0.1,"+sans, "--log-format=json")
	p, err := harness.Start("webhook", logDir, env["E2E_PROVIDER_BIN"], args, []string{"KUBECONFIG=" + saConfig})
	if err != nil {
		return nil, err
	}
	line, err := p.WaitForLine(regexp.MustCompile(`(.*"message":"akeyless-csi-provider webhook serving".*)`), 30*time.Second)
	if err != nil {
		p.Stop()
		return nil, err
	}
	w := &webhookProc{proc: p}
	for re, dst := range map[*regexp.Regexp]*string{addrField: &w.addr, health: &w.health, metrics: &w.metrics} {
		m := re.FindStringSubmatch(line)
		if m == nil {
			p.Stop()
			return nil, fmt.Errorf("no %s in %q", re, line)
		}
		*dst = m[1]
	}
	return w, nil
}

// register creates the configuration pointed at the process, waits for the process to fill
// its caBundle, for /readyz, and for the API server to call it.
func register(ctx context.Context, config *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	c := config.DeepCopy()
	w := &c.Webhooks[0]
	w.ClientConfig.Service = nil
	w.ClientConfig.URL = ptr.To("https://" + wh.addr + "/validate")
	w.ClientConfig.CABundle = nil
	w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{nsLabel: runID}}
	if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, c, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := harness.Poll(30*time.Second, 100*time.Millisecond, "the caBundle and /readyz", func() (bool, error) {
		if wh.proc.Exited() {
			return false, fmt.Errorf("%w: the webhook exited:\n%s", harness.ErrStop, wh.proc.Tail(20))
		}
		bundle, err := caBundle()
		if err != nil || len(bundle) == 0 {
			return false, err
		}
		return httpStatus("http://"+wh.health+"/readyz") == http.StatusOK, nil
	}); err != nil {
		return err
	}
	return waitUntilChecked()
}

// waitUntilChecked waits until the API server calls the webhook with the current caBundle: a
// dry-run create of a broken SPC is refused by it.
func waitUntilChecked() error {
	probe := newSPC("probe", "akeyless", map[string]string{"objects": "- fileName: x"})
	return harness.Poll(30*time.Second, 100*time.Millisecond, "the API server to call the webhook", func() (bool, error) {
		_, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Create(context.Background(), probe,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), webhookName), nil
	})
}

func caBundle() ([]byte, error) {
	c, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), configName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return c.Webhooks[0].ClientConfig.CABundle, nil
}

func httpStatus(url string) int {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue returns the value of the sample whose line starts with prefix (0 when absent).
func metricValue(text, prefix string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// --- SecretProviderClasses

const goodObjects = `- secretPath: /app/db/password
  fileName: db-password
- secretPath: /app/tls
  type: certificate
  fileName: tls
`

func goodParams() map[string]string {
	return map[string]string{
		"akeylessAccessType":        "k8s",
		"akeylessAccessID":          "p-webhook-e2e",
		"akeylessK8sAuthConfigName": "e2e-cluster",
		"objects":                   goodObjects,
	}
}

// badParams is what a mount refuses twice: an unknown access type and a fileName leaving the mount.
func badParams() map[string]string {
	p := goodParams()
	p["akeylessAccessType"] = "password"
	p["objects"] = "- secretPath: /app/db/password\n  fileName: ../escape\n"
	return p
}

func newSPC(name, provider string, params map[string]string) *secretsstorev1.SecretProviderClass {
	return &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       secretsstorev1.SecretProviderClassSpec{Provider: secretsstorev1.Provider(provider), Parameters: params},
	}
}

// spcYAML renders an SPC manifest for kubectl and `validate`.
func spcYAML(name, provider string, params map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  provider: %s\n  parameters:\n", name, ns, provider)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := json.Marshal(params[k]) // a JSON string is a YAML string
		fmt.Fprintf(&b, "    %s: %s\n", k, v)
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(workDir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", append([]string{"--request-timeout=30s"}, args...)...).CombinedOutput()
	return string(out), err
}

// reviews returns the webhook's review log lines (JSON) for SPCs whose name matches.
func reviews(t *testing.T, name *regexp.Regexp) []map[string]any {
	t.Helper()
	var out []map[string]any
	s := bufio.NewScanner(strings.NewReader(wh.proc.Log()))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var line map[string]any
		if json.Unmarshal(s.Bytes(), &line) != nil || line["message"] != "review" {
			continue
		}
		if n, _ := line["name"].(string); name.MatchString(n) {
			out = append(out, line)
		}
	}
	return out
}

// --- tests, in order: the last one stops the webhook.

func TestCABundleIsKeptByTheWebhookWithOnlyItsRBAC(t *testing.T) {
	bundle, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatalf("the caBundle holds no certificate: %q", bundle)
	}
	// The bundle the process wrote trusts the certificate it serves, for the name dialled.
	conn, err := tls.Dial("tcp", wh.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("the caBundle doesn't verify the served certificate: %v", err)
	}
	conn.Close()
	if _, err := tls.Dial("tcp", wh.addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("the served certificate verified without the caBundle: the check above proves nothing")
	}
	// The process wrote it as its ServiceAccount, whose RBAC covers that one object and nothing else.
	user := fmt.Sprintf("system:serviceaccount:%s:%s", saNS, saName)
	for _, c := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: configName, Verb: "patch"}, true},
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: configName, Verb: "watch"}, true},
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "someone-elses", Verb: "patch"}, false},
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Verb: "list"}, false},
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: configName, Verb: "delete"}, false},
		{authorizationv1.ResourceAttributes{Group: "secrets-store.csi.x-k8s.io", Resource: "secretproviderclasses", Namespace: ns, Verb: "get"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Namespace: ns, Verb: "get"}, false},
	} {
		review, err := kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts"}, ResourceAttributes: &c.attrs},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != c.want {
			t.Errorf("%s may %s %s %q: %v, want %v", user, c.attrs.Verb, c.attrs.Resource, c.attrs.Name, review.Status.Allowed, c.want)
		}
	}
	if v := metricValue(scrape(t, "http://"+wh.metrics+"/metrics"), `akeyless_csi_provider_webhook_ca_bundle_updates_total{result="ok"}`); v < 1 {
		t.Errorf("no caBundle update counted (%v)", v)
	}
}

func TestBadSPCIsRejectedWithTheValidatorsMessage(t *testing.T) {
	manifest := writeFile(t, "bad.yaml", spcYAML("bad", "akeyless", badParams()))
	out, err := kubectl("apply", "-f", manifest)
	t.Logf("$ kubectl apply -f bad.yaml\n%s", out)
	if err == nil {
		t.Fatalf("kubectl apply of a broken SPC succeeded:\n%s", out)
	}
	// `validate` on the same file: the webhook's message carries every one of its lines.
	vout, verr := exec.Command(env["E2E_PROVIDER_BIN"], "validate", manifest).CombinedOutput()
	if verr == nil {
		t.Fatalf("validate accepted the broken SPC:\n%s", vout)
	}
	var findings []string
	for _, line := range strings.Split(strings.TrimSpace(string(vout)), "\n") {
		if _, finding, ok := strings.Cut(line, "(bad): "); ok {
			findings = append(findings, finding)
		}
	}
	if len(findings) != 2 {
		t.Fatalf("validate found %d problems, want 2:\n%s", len(findings), vout)
	}
	// kubectl shows it as any invalid object: kind, name, then field: message per problem.
	want := "The SecretProviderClass \"bad\" is invalid: \n* " + strings.Join(findings, "\n* ")
	if strings.TrimSpace(out) != want {
		t.Errorf("kubectl said:\n%s\nwant:\n%s", out, want)
	}
	if _, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Get(context.Background(), "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the rejected SPC exists: %v", err)
	}
	// An API client sees a 422 Invalid naming the webhook, not a webhook failure.
	_, err = spcs.SecretsstoreV1().SecretProviderClasses(ns).Create(context.Background(), newSPC("bad", "akeyless", badParams()), metav1.CreateOptions{})
	wantMessage := fmt.Sprintf("admission webhook %q denied the request: SecretProviderClass %s/bad has 2 problems "+
		"(akeyless-csi-provider validate shows the same):\n- %s", webhookName, ns, strings.Join(findings, "\n- "))
	if !apierrors.IsInvalid(err) || err.Error() != wantMessage {
		t.Errorf("create: %v\nwant a 422 with:\n%s", err, wantMessage)
	}
	lines := reviews(t, regexp.MustCompile(`^bad$`))
	if len(lines) != 2 || lines[0]["result"] != "denied" {
		t.Fatalf("review log lines for bad: %v", lines)
	}
	if got := fmt.Sprint(lines[0]["problems"]); !strings.Contains(got, "spec.parameters.akeylessAccessType") ||
		!strings.Contains(got, "spec.objects[0].fileName") {
		t.Errorf("logged problems %s", got)
	}
}

func TestGoodSPCIsAccepted(t *testing.T) {
	warnings.take()
	if _, err := warned.SecretsstoreV1().SecretProviderClasses(ns).Create(context.Background(),
		newSPC("good", "akeyless", goodParams()), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a valid SPC was refused: %v", err)
	}
	if w := warnings.take(); len(w) != 0 {
		t.Errorf("warnings for a valid SPC: %q", w)
	}
	lines := reviews(t, regexp.MustCompile(`^good$`))
	if len(lines) != 1 || lines[0]["result"] != "allowed" || lines[0]["operation"] != "CREATE" {
		t.Fatalf("review log lines for good: %v", lines)
	}
}

func TestRiskySPCIsAcceptedWithWarnings(t *testing.T) {
	p := goodParams()
	p["akeylessAccessType"] = "access_key"
	p["akeylessAccessKey"] = accessKeyValue
	p["akeylessGatewayURL"] = "http://gateway.internal:8080"
	p["akeylessTokenScope"] = "serviceAccount"
	delete(p, "akeylessK8sAuthConfigName")
	manifest := writeFile(t, "risky.yaml", spcYAML("risky", "akeyless", p))
	out, err := kubectl("apply", "-f", manifest)
	t.Logf("$ kubectl apply -f risky.yaml\n%s", out)
	if err != nil {
		t.Fatalf("a risky but valid SPC was refused: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Warning: spec.parameters.akeylessAccessKey: a credential in the SecretProviderClass is readable",
		"Warning: spec.parameters.akeylessGatewayURL: an http:// gateway",
		"Warning: spec.parameters.akeylessTokenScope: serviceAccount: every pod of a service account shares",
		"secretproviderclass.secrets-store.csi.x-k8s.io/risky created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, accessKeyValue) {
		t.Errorf("a warning quotes the access key:\n%s", out)
	}
	// An update that keeps the risk gets the warnings again (client-go sees them too).
	warnings.take()
	risky, err := warned.SecretsstoreV1().SecretProviderClasses(ns).Get(context.Background(), "risky", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	risky.Spec.Parameters["akeylessGatewayURL"] = "http://gateway.internal:8081"
	if _, err := warned.SecretsstoreV1().SecretProviderClasses(ns).Update(context.Background(), risky, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := warnings.take(); len(w) != 3 {
		t.Errorf("warnings on update: %q, want 3", w)
	}
}

func TestSecretObjectsAreCheckedAgainstTheObjects(t *testing.T) {
	withSecret := func(name string, data ...string) *secretsstorev1.SecretProviderClass {
		spc := newSPC(name, "akeyless", goodParams())
		o := &secretsstorev1.SecretObject{SecretName: "app", Type: "Opaque"}
		for i := 0; i+1 < len(data); i += 2 {
			o.Data = append(o.Data, &secretsstorev1.SecretObjectData{ObjectName: data[i], Key: data[i+1]})
		}
		spc.Spec.SecretObjects = []*secretsstorev1.SecretObject{o}
		return spc
	}
	_, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Create(context.Background(),
		withSecret("typo", "db-pasword", "password"), metav1.CreateOptions{})
	want := `spec.secretObjects[0].data[0].objectName: spec.secretObjects[0].data[0].objectName "db-pasword" is not a file ` +
		`of this SecretProviderClass: no object writes it; use the fileName of one of the objects (files: db-password, tls/tls.crt, tls/tls.key, tls/ca.crt)`
	if !apierrors.IsInvalid(err) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("create: %v\nwant a 422 ending in %s", err, want)
	}
	if _, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Create(context.Background(),
		withSecret("files", "db-password", "password", "tls/tls.crt", "tls.crt"), metav1.CreateOptions{}); err != nil {
		t.Errorf("secretObjects naming the objects' files were refused: %v", err)
	}
}

func TestUpdateThatBreaksAGoodSPCIsRejected(t *testing.T) {
	client := spcs.SecretsstoreV1().SecretProviderClasses(ns)
	if _, err := client.Create(context.Background(), newSPC("update", "akeyless", goodParams()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spc, err := client.Get(context.Background(), "update", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spc.Spec.Parameters["akeylessTokenScope"] = "everyone"
	_, err = client.Update(context.Background(), spc, metav1.UpdateOptions{})
	want := `SecretProviderClass ` + ns + `/update: spec.parameters.akeylessTokenScope: parameter akeylessTokenScope "everyone" is not supported; use pod or serviceAccount`
	if !apierrors.IsInvalid(err) || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("update: %v\nwant a 422 ending in %s", err, want)
	}
	stored, err := client.Get(context.Background(), "update", metav1.GetOptions{})
	if err != nil || stored.Spec.Parameters["akeylessTokenScope"] != "" || stored.ResourceVersion != spc.ResourceVersion {
		t.Fatalf("the refused update changed the SPC: %v %v", stored.Spec.Parameters, err)
	}
	// A valid change, and a change of labels only, go through.
	stored.Spec.Parameters["akeylessTokenScope"] = "pod"
	stored.Labels = map[string]string{"team": "payments"}
	if _, err := client.Update(context.Background(), stored, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("a valid update was refused: %v", err)
	}
	lines := reviews(t, regexp.MustCompile(`^update$`))
	if len(lines) != 3 || lines[1]["operation"] != "UPDATE" || lines[1]["result"] != "denied" || lines[2]["result"] != "allowed" {
		t.Errorf("review log lines for update: %v", lines)
	}
}

func TestV1alpha1IsCheckedToo(t *testing.T) {
	spc := &secretsstorev1alpha1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: "old-api", Namespace: ns},
		Spec:       secretsstorev1alpha1.SecretProviderClassSpec{Provider: "akeyless", Parameters: badParams()},
	}
	_, err := spcs.SecretsstoreV1alpha1().SecretProviderClasses(ns).Create(context.Background(), spc, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "has 2 problems") {
		t.Fatalf("v1alpha1 create: %v, want a 422 with the 2 problems", err)
	}
}

func TestOtherProvidersNeverReachTheWebhook(t *testing.T) {
	client := spcs.SecretsstoreV1().SecretProviderClasses(ns)
	before := scrape(t, "http://"+wh.metrics+"/metrics")
	// Parameters an Akeyless SPC can't have: only the matchCondition lets this through.
	vault, err := client.Create(context.Background(), newSPC("vault-app", "vault", badParams()), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("another provider's SPC was refused: %v", err)
	}
	vault.Spec.Parameters["roleName"] = "app"
	if _, err := client.Update(context.Background(), vault, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The control: an Akeyless SPC right after is reviewed and logged.
	if _, err := client.Create(context.Background(), newSPC("akeyless-control", "akeyless", goodParams()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := reviews(t, regexp.MustCompile(`^akeyless-control$`)); len(got) != 1 {
		t.Fatalf("the control SPC's review is not in the log: %v", got)
	}
	if got := reviews(t, regexp.MustCompile(`^vault-app$`)); len(got) != 0 {
		t.Errorf("the API server sent another provider's SPC to the webhook: %v", got)
	}
	after := scrape(t, "http://"+wh.metrics+"/metrics")
	const skipped = `akeyless_csi_provider_webhook_reviews_total{result="skipped"}`
	if metricValue(after, skipped) != metricValue(before, skipped) {
		t.Errorf("the webhook skipped reviews (requests it should never get): %v → %v",
			metricValue(before, skipped), metricValue(after, skipped))
	}
}

func TestCABundleIsRestoredWhenReset(t *testing.T) {
	// What `helm upgrade --force` or a hand edit does: the caBundle is emptied.
	patch := []byte(`[{"op":"remove","path":"/webhooks/0/clientConfig/caBundle"}]`)
	if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(context.Background(), configName,
		types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := harness.Poll(30*time.Second, 50*time.Millisecond, "the caBundle to be restored", func() (bool, error) {
		b, err := caBundle()
		return len(b) > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("caBundle restored %s after it was removed (from the watch, not the %s resync)", time.Since(start).Round(time.Millisecond), "60s")
	if time.Since(start) > 30*time.Second {
		t.Error("restored only by the periodic resync, not by the watch")
	}
	if err := waitUntilChecked(); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookLatency measures apiserver → webhook → answer over latencyApplies server-side
// applies of Akeyless SPCs, against as many applies of another provider's SPCs (the same path
// through the API server, minus the webhook call), interleaved.
func TestWebhookLatency(t *testing.T) {
	client := unlimited.SecretsstoreV1().SecretProviderClasses(ns)
	apply := func(name, provider string) time.Duration {
		spc := newSPC(name, provider, goodParams())
		spc.TypeMeta = metav1.TypeMeta{APIVersion: "secrets-store.csi.x-k8s.io/v1", Kind: "SecretProviderClass"}
		body, _ := json.Marshal(spc)
		start := time.Now()
		if _, err := client.Patch(context.Background(), name, types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: "e2e-latency", Force: ptr.To(true)}); err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
		return time.Since(start)
	}
	apiserverMetric := func() (sum, count float64, buckets map[string]float64) {
		raw, err := kube.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		buckets = map[string]float64{}
		le := regexp.MustCompile(`le="([^"]+)"`)
		for _, line := range strings.Split(string(raw), "\n") {
			if !strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds") ||
				!strings.Contains(line, `name="`+webhookName+`"`) || !strings.Contains(line, `operation="CREATE"`) {
				continue
			}
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			switch {
			case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_sum"):
				sum += v
			case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_count"):
				count += v
			case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_bucket"):
				if m := le.FindStringSubmatch(line); m != nil {
					buckets[m[1]] += v
				}
			}
		}
		return
	}
	for i := 0; i < latencyWarmup; i++ {
		apply(fmt.Sprintf("warm-a-%03d", i), "akeyless")
		apply(fmt.Sprintf("warm-v-%03d", i), "vault")
	}
	sum0, count0, buckets0 := apiserverMetric()
	var with, without []time.Duration
	for i := 0; i < latencyApplies; i++ {
		with = append(with, apply(fmt.Sprintf("lat-a-%03d", i), "akeyless"))
		without = append(without, apply(fmt.Sprintf("lat-v-%03d", i), "vault"))
	}
	sum1, count1, buckets1 := apiserverMetric()
	if count1-count0 != latencyApplies {
		t.Fatalf("the API server called the webhook %v times for %d applies", count1-count0, latencyApplies)
	}
	var handled []time.Duration
	for _, line := range reviews(t, regexp.MustCompile(`^lat-a-\d{3}$`)) {
		us, _ := line["duration_us"].(float64)
		handled = append(handled, time.Duration(us)*time.Microsecond)
	}
	if len(handled) != latencyApplies {
		t.Fatalf("%d review log lines for %d applies", len(handled), latencyApplies)
	}
	if got := reviews(t, regexp.MustCompile(`^lat-v-\d{3}$`)); len(got) != 0 {
		t.Fatalf("the baseline reached the webhook: %d lines", len(got))
	}
	var bucketLines []string
	les := make([]string, 0, len(buckets1))
	for le := range buckets1 {
		les = append(les, le)
	}
	sort.Slice(les, func(i, j int) bool { return parseLE(les[i]) < parseLE(les[j]) })
	for _, le := range les {
		bucketLines = append(bucketLines, fmt.Sprintf("≤%ss: %v", le, buckets1[le]-buckets0[le]))
	}
	p := func(d []time.Duration, q float64) time.Duration { return percentile(d, q).Round(10 * time.Microsecond) }
	t.Logf("webhook latency over %d server-side applies each (after %d warm-up applies each), %s:\n"+
		"  apply of an Akeyless SPC (client → apiserver → webhook → answer → etcd → client): p50 %v  p99 %v\n"+
		"  apply of another provider's SPC (same path, no webhook call):                    p50 %v  p99 %v\n"+
		"  added by the webhook call (difference of the percentiles):                        p50 %v  p99 %v\n"+
		"  apiserver's own measure of the webhook call (apiserver → webhook → answer): mean %v over %v calls; buckets %s\n"+
		"  inside the webhook (request body → answer, from its log):                       p50 %v  p99 %v",
		latencyApplies, latencyWarmup, os.Getenv("E2E_KUBE_VERSION"),
		p(with, 0.5), p(with, 0.99), p(without, 0.5), p(without, 0.99),
		p(with, 0.5)-p(without, 0.5), p(with, 0.99)-p(without, 0.99),
		(time.Duration((sum1 - sum0) / (count1 - count0) * float64(time.Second))).Round(10*time.Microsecond), count1-count0,
		strings.Join(bucketLines, ", "),
		p(handled, 0.5), p(handled, 0.99))
}

func parseLE(s string) float64 {
	if s == "+Inf" {
		return math.Inf(1)
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// percentile is the nearest-rank percentile.
func percentile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

func TestTheLogNeverQuotesParameterValues(t *testing.T) {
	log := wh.proc.Log()
	if !strings.Contains(log, `"name":"risky"`) {
		t.Fatal("the risky SPC's review is not in the log: this check proves nothing")
	}
	for _, v := range []string{accessKeyValue, "gateway.internal", "../escape", "everyone"} {
		if strings.Contains(log, v) {
			t.Errorf("the webhook's log quotes a parameter value %q", v)
		}
	}
}

// TestIgnoreWhenTheWebhookIsDown stops the webhook (so it runs last): with the chart's
// failurePolicy Ignore applies go on unchecked; with Fail they are refused, which shows that the
// policy, not a silent webhook, let them through.
func TestIgnoreWhenTheWebhookIsDown(t *testing.T) {
	wh.proc.Stop()
	if err := wh.proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("the webhook did not stop cleanly on SIGTERM: %v", err)
	}
	client := spcs.SecretsstoreV1().SecretProviderClasses(ns)
	if _, err := client.Create(context.Background(), newSPC("while-down", "akeyless", badParams()), metav1.CreateOptions{}); err != nil {
		t.Fatalf("with failurePolicy Ignore and the webhook down, the apply failed: %v", err)
	}
	setPolicy := func(p admissionregistrationv1.FailurePolicyType) {
		patch, _ := json.Marshal([]map[string]any{{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": p}})
		if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(context.Background(), configName,
			types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setPolicy(admissionregistrationv1.Fail)
	defer setPolicy(admissionregistrationv1.Ignore)
	err := harness.Poll(30*time.Second, 100*time.Millisecond, "failurePolicy Fail to refuse applies", func() (bool, error) {
		_, err := client.Create(context.Background(), newSPC("while-down-fail", "akeyless", goodParams()),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "failed calling webhook"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
