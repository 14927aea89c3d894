// Package sync tests `akeyless-csi-provider sync` against a real kube-apiserver (with
// kube-controller-manager's garbage collector) and the Akeyless emulator, whose Kubernetes auth
// validates the minted tokens with a real TokenReview. The controller runs as its own
// ServiceAccount with exactly the RBAC of deploy/manifests/akeyless-csi-provider-sync.yaml.
//
// Run it through tests/e2e/run.sh, which builds the components and starts the control plane.
package sync

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	spcclient "sigs.k8s.io/secrets-store-csi-driver/pkg/client/clientset/versioned"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/akeyless-csi-provider/tests/e2e/suite/internal/harness"
)

const (
	k8sAccessID = "p-sync-k8s"
	k8sConfig   = "sync-cluster"
	audience    = "akeyless"
	// The controller's Lease (kube-system, as the manifest's --leader-election-namespace says).
	leaseName = "akeyless-csi-provider-sync-e2e"
	// Short Lease timings so failover is quick in the test.
	leaseDuration = 4 * time.Second
)

var (
	kube        *kubernetes.Clientset
	spcs        *spcclient.Clientset
	emulator    *harness.Emulator
	provider    *harness.Provider
	env         map[string]string
	workDir     string
	logDir      string
	runID       string
	syncConfig  string // kubeconfig of the controller's ServiceAccount
	controllers = map[string]*controller{}
	certPEM     string
	keyPKCS8    string
	keySEC1     string
)

type controller struct {
	proc    *harness.Proc
	metrics string
}

func nsApp() string     { return "sync-app-" + runID }
func nsOutside() string { return "sync-outside-" + runID }

func TestMain(m *testing.M) { os.Exit(run(m)) }

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "sync e2e setup: "+format+"\n", args...)
	return 1
}

func run(m *testing.M) int {
	var err error
	env, err = harness.MustEnv("E2E_PROVIDER_BIN", "E2E_EMULATOR_BIN", "E2E_DRIVER_MODULE_DIR", "KUBECONFIG", "E2E_API_SERVER", "E2E_CA_FILE")
	if err != nil {
		return fail("%v", err)
	}
	workDir, err = os.MkdirTemp(os.Getenv("E2E_WORK_DIR"), "sync-")
	if err != nil {
		return fail("%v", err)
	}
	runID = strings.ToLower(filepath.Base(workDir)[len("sync-"):])
	logDir = filepath.Join(workDir, "logs")
	if kube, spcs, err = harness.Clients(env["KUBECONFIG"]); err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	crd := filepath.Join(env["E2E_DRIVER_MODULE_DIR"], "deploy", "secrets-store.csi.x-k8s.io_secretproviderclasses.yaml")
	manifest, _ := filepath.Abs("../../../../deploy/manifests/akeyless-csi-provider-sync.yaml")
	if err := harness.Apply([]string{crd, manifest}, "secretproviderclasses.secrets-store.csi.x-k8s.io"); err != nil {
		return fail("%v", err)
	}
	// The controller authenticates as the manifest's ServiceAccount: only its RBAC applies.
	token, err := harness.ServiceAccountToken(ctx, kube, "kube-system", "akeyless-csi-provider-sync")
	if err != nil {
		return fail("controller token: %v", err)
	}
	syncConfig = filepath.Join(workDir, "sync.kubeconfig")
	if err := harness.WriteTokenKubeconfig(syncConfig, env["E2E_API_SERVER"], env["E2E_CA_FILE"], token); err != nil {
		return fail("%v", err)
	}
	reviewer, err := harness.TokenReviewer(ctx, kube, "akeyless-sync-token-reviewer")
	if err != nil {
		return fail("token reviewer: %v", err)
	}
	caPEM, err := os.ReadFile(env["E2E_CA_FILE"])
	if err != nil {
		return fail("%v", err)
	}
	if err := makeCertificate(); err != nil {
		return fail("certificate: %v", err)
	}
	for _, ns := range []string{nsApp(), nsOutside()} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fail("namespace %s: %v", ns, err)
		}
		for _, sa := range []string{"app", "stranger"} {
			if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
				return fail("service account %s/%s: %v", ns, sa, err)
			}
		}
	}

	emulator, err = harness.StartEmulator(env["E2E_EMULATOR_BIN"], logDir)
	if err != nil {
		return fail("emulator: %v", err)
	}
	defer emulator.Stop()
	if err := emulator.Seed(seed(env["E2E_API_SERVER"], string(caPEM), reviewer)); err != nil {
		return fail("seed: %v", err)
	}
	// A provider serving mounts, to compare the Secrets with what a pod's mount renders.
	provider, err = harness.StartProvider(env["E2E_PROVIDER_BIN"], logDir, filepath.Join(workDir, "providers"), emulator.URL)
	if err != nil {
		return fail("provider: %v", err)
	}
	defer provider.Stop()
	if _, err := startController("sync-1"); err != nil {
		return fail("controller: %v", err)
	}
	defer func() {
		for _, c := range controllers {
			c.proc.Stop()
		}
	}()

	code := m.Run()
	if code != 0 {
		for name, c := range controllers {
			fmt.Fprintf(os.Stderr, "--- %s log (last 30 lines)\n%s\n", name, c.proc.Tail(30))
		}
		fmt.Fprintf(os.Stderr, "--- logs kept in %s\n", logDir)
	}
	return code
}

var metricsAddr = regexp.MustCompile(`metrics=(\S+)`)

// startController runs `akeyless-csi-provider sync` as identity, with the Helm chart's flags.
func startController(identity string) (*controller, error) {
	p, err := harness.Start(identity, logDir, env["E2E_PROVIDER_BIN"], []string{
		"sync",
		"--akeyless-url", emulator.URL,
		"--leader-election-namespace", "kube-system",
		"--leader-election-lease", leaseName,
		"--lease-duration", leaseDuration.String(),
		"--renew-deadline", "3s",
		"--retry-period", "500ms",
		"--min-sync-interval", "1s",
		"--namespaces", nsApp(),
		"--health-addr", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0",
		"--log-format", "text",
		"--log-level", "info,akeyless_csi_provider=debug",
	}, []string{"KUBECONFIG=" + syncConfig, "POD_NAME=" + identity})
	if err != nil {
		return nil, err
	}
	var addr string
	err = harness.Poll(30*time.Second, 100*time.Millisecond, identity+" to start", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%w: %s exited:\n%s", harness.ErrStop, identity, p.Tail(20))
		}
		for _, line := range strings.Split(p.Log(), "\n") {
			if m := metricsAddr.FindStringSubmatch(line); m != nil && strings.Contains(line, "sync starting") {
				addr = m[1]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	c := &controller{proc: p, metrics: "http://" + addr + "/metrics"}
	controllers[identity] = c
	return c, nil
}

// seed: a Kubernetes auth config checked by TokenReview against the real apiserver, a k8s auth
// method bound to the ServiceAccount `app` of the test namespaces (not `stranger`), grants on
// /sync/* and the items.
func seed(apiServer, caPEM, reviewer string) map[string]any {
	return map[string]any{
		"k8s_auth_configs": []map[string]any{{
			"name": k8sConfig, "api_server": apiServer, "ca_cert_pem": caPEM, "token_reviewer_jwt": reviewer,
		}},
		"auth_methods": []map[string]any{{
			"type": "k8s", "access_id": k8sAccessID, "config_name": k8sConfig,
			"bound_namespaces":       []string{nsApp(), nsOutside()},
			"bound_service_accounts": []string{"app"},
			"audience":               audience,
		}},
		"grants": []map[string]any{{"access_id": k8sAccessID, "path": "/sync/*"}},
		"items": []map[string]any{
			{"type": "static_secret", "name": "/sync/db", "versions": []string{`{"username":"app-user","password":"app-pass"}`}},
			{"type": "static_secret", "name": "/sync/rotating", "versions": []string{"rotation-v1"}},
			{"type": "static_secret", "name": "/sync/steady", "versions": []string{"steady-value"}},
			{"type": "certificate", "name": "/sync/tls", "versions": []map[string]any{
				{"certificate_pem": certPEM, "private_key_pem": keyPKCS8}}},
		},
	}
}

// makeCertificate: an ECDSA certificate whose key Akeyless returns as PKCS#8; a TLS Secret must
// carry it as SEC 1, as the driver's own sync writes it.
func makeCertificate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "sync.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPKCS8 = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	keySEC1 = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	return nil
}

const objectsYAML = `- secretPath: /sync/db
  fileName: db/username
  key: username
- secretPath: /sync/db
  fileName: db/password
  key: password
- secretPath: /sync/rotating
  fileName: rotating
- secretPath: /sync/steady
  fileName: steady
- secretPath: /sync/tls
  type: certificate
  fileName: tls
`

func parameters() map[string]string {
	return map[string]string{
		"akeylessAccessType":        "k8s",
		"akeylessAccessID":          k8sAccessID,
		"akeylessK8sAuthConfigName": k8sConfig,
		"objects":                   objectsYAML,
	}
}

type spcOpt func(*secretsstorev1.SecretProviderClass)

func withAnnotation(k, v string) spcOpt {
	return func(s *secretsstorev1.SecretProviderClass) { s.Annotations[k] = v }
}

func withSecrets(objs ...*secretsstorev1.SecretObject) spcOpt {
	return func(s *secretsstorev1.SecretProviderClass) { s.Spec.SecretObjects = objs }
}

func secretObject(name, typ string, data ...string) *secretsstorev1.SecretObject {
	o := &secretsstorev1.SecretObject{SecretName: name, Type: typ, Labels: map[string]string{"team": "payments"},
		Annotations: map[string]string{"note": "from-spc"}}
	for i := 0; i+1 < len(data); i += 2 {
		o.Data = append(o.Data, &secretsstorev1.SecretObjectData{ObjectName: data[i], Key: data[i+1]})
	}
	return o
}

func createSPC(t *testing.T, ns, name string, opts ...spcOpt) *secretsstorev1.SecretProviderClass {
	t.Helper()
	spc := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{
			"akeyless.io/sync-service-account": "app", "akeyless.io/sync-interval": "1h"}},
		Spec: secretsstorev1.SecretProviderClassSpec{Provider: "akeyless", Parameters: parameters()},
	}
	for _, o := range opts {
		o(spc)
	}
	created, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Create(context.Background(), spc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create SPC %s/%s: %v", ns, name, err)
	}
	return created
}

func getSecret(ns, name string) (*corev1.Secret, error) {
	return kube.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
}

func waitForSecret(t *testing.T, ns, name string, timeout time.Duration, cond func(*corev1.Secret) bool) *corev1.Secret {
	t.Helper()
	var s *corev1.Secret
	err := harness.Poll(timeout, 100*time.Millisecond, "Secret "+ns+"/"+name, func() (bool, error) {
		var err error
		s, err = getSecret(ns, name)
		if err != nil {
			return false, err
		}
		return cond == nil || cond(s), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitForEvent waits for an Event on the SPC with this type and reason, and returns its note.
func waitForEvent(t *testing.T, ns, spc, typ, reason string) string {
	t.Helper()
	var note string
	err := harness.Poll(30*time.Second, 200*time.Millisecond, fmt.Sprintf("a %s Event %s on %s", typ, reason, spc), func() (bool, error) {
		list, err := kube.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == spc && e.Regarding.Kind == "SecretProviderClass" && e.Type == typ && e.Reason == reason {
				note = e.Note
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return note
}

// mountFiles mounts the same parameters as a pod of ServiceAccount `app` would, over the
// provider's socket, and returns the files.
func mountFiles(t *testing.T, ns string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := harness.ServiceAccountToken(ctx, kube, ns, "app", audience)
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := json.Marshal(map[string]any{audience: map[string]string{"token": token,
		"expirationTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})
	attrs := parameters()
	attrs["csi.storage.k8s.io/pod.name"] = "compare"
	attrs["csi.storage.k8s.io/pod.namespace"] = ns
	attrs["csi.storage.k8s.io/pod.uid"] = "00000000-0000-0000-0000-00000000c0de"
	attrs["csi.storage.k8s.io/serviceAccount.name"] = "app"
	attrs["csi.storage.k8s.io/serviceAccount.tokens"] = string(tokens)
	b, _ := json.Marshal(attrs)
	conn, err := harness.DialUnix(provider.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := v1alpha1.NewCSIDriverProviderClient(conn).Mount(ctx, &v1alpha1.MountRequest{
		Attributes: string(b), Secrets: "{}", TargetPath: "/compare", Permission: "420"})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	files := map[string]string{}
	for _, f := range resp.GetFiles() {
		files[f.GetPath()] = string(f.GetContents())
	}
	return files
}

func TestSecretAppearsWithoutAPodAndMatchesAMount(t *testing.T) {
	ns := nsApp()
	spc := createSPC(t, ns, "app", withSecrets(
		secretObject("db-credentials", "Opaque", "db/username", "username", "db/password", "password", "steady", "steady"),
		secretObject("app-tls", "kubernetes.io/tls", "tls/tls.crt", "tls.crt", "tls/tls.key", "tls.key"),
	))
	db := waitForSecret(t, ns, "db-credentials", 30*time.Second, nil)
	tls := waitForSecret(t, ns, "app-tls", 30*time.Second, nil)
	files := mountFiles(t, ns)
	for key, file := range map[string]string{"username": "db/username", "password": "db/password", "steady": "steady"} {
		if got, want := string(db.Data[key]), files[file]; got != want || want == "" {
			t.Errorf("Secret key %s = %q, the mount's file %s = %q", key, got, file, want)
		}
	}
	if len(db.Data) != 3 {
		t.Errorf("Secret has keys %v, want exactly username, password, steady", keys(db.Data))
	}
	if string(db.Data["password"]) != "app-pass" {
		t.Errorf("password = %q", db.Data["password"])
	}
	if db.Type != corev1.SecretTypeOpaque || tls.Type != corev1.SecretTypeTLS {
		t.Errorf("types %q, %q", db.Type, tls.Type)
	}
	if got := string(tls.Data["tls.crt"]); got != files["tls/tls.crt"] || got != certPEM {
		t.Errorf("tls.crt differs from the mount's tls/tls.crt or the certificate")
	}
	// The driver's rule: the key is written in its traditional form (SEC 1 for EC), as Go's
	// x509.MarshalECPrivateKey writes it.
	if got := string(tls.Data["tls.key"]); got != keySEC1 {
		t.Errorf("tls.key is not the SEC 1 form of the key:\n%s", got)
	}
	if files["tls/tls.key"] != keyPKCS8 {
		t.Errorf("the mount's tls/tls.key should be the key as Akeyless returned it")
	}
	if db.Labels["team"] != "payments" || db.Annotations["note"] != "from-spc" || db.Labels["akeyless.io/sync-managed"] != "true" {
		t.Errorf("labels %v annotations %v", db.Labels, db.Annotations)
	}
	if !strings.HasPrefix(db.Annotations["akeyless.io/content-hash"], "sha256:") {
		t.Errorf("no content hash annotation: %v", db.Annotations)
	}
	owners := db.OwnerReferences
	if len(owners) != 1 || owners[0].UID != spc.UID || owners[0].Kind != "SecretProviderClass" || !harness.Deref(owners[0].Controller, false) {
		t.Errorf("owner references %+v, want the SPC (uid %s) as controller", owners, spc.UID)
	}
	waitForEvent(t, ns, "app", "Normal", "SecretSynced")
}

func TestRotationUpdatesWithinTheIntervalAndUnchangedSecretsAreNotWritten(t *testing.T) {
	ns := nsApp()
	const interval = 3 * time.Second
	createSPC(t, ns, "rotation", withAnnotation("akeyless.io/sync-interval", interval.String()), withSecrets(
		secretObject("rotating", "Opaque", "rotating", "value"),
		secretObject("steady", "Opaque", "steady", "value"),
	))
	rotating := waitForSecret(t, ns, "rotating", 30*time.Second, nil)
	steady := waitForSecret(t, ns, "steady", 30*time.Second, nil)
	if string(rotating.Data["value"]) != "rotation-v1" {
		t.Fatalf("rotating = %q", rotating.Data["value"])
	}
	// Let a few refreshes happen with nothing changed: reads from Akeyless, no writes.
	before := countReads(t, "/sync/steady")
	err := harness.Poll(4*interval, 200*time.Millisecond, "two refreshes of the SPC", func() (bool, error) {
		return countReads(t, "/sync/steady") >= before+2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{rotating, steady} {
		now, err := getSecret(ns, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if now.ResourceVersion != s.ResourceVersion {
			t.Errorf("Secret %s was written although nothing changed (resourceVersion %s → %s)", s.Name, s.ResourceVersion, now.ResourceVersion)
		}
	}

	if _, err := emulator.PutStaticSecret("/sync/rotating", "rotation-v2"); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	updated := waitForSecret(t, ns, "rotating", 3*interval, func(s *corev1.Secret) bool {
		return string(s.Data["value"]) == "rotation-v2"
	})
	took := time.Since(rotated)
	t.Logf("rotation reached the Secret after %s (interval %s)", took.Round(time.Millisecond), interval)
	if limit := interval + interval/10 + 2*time.Second; took > limit {
		t.Errorf("rotation took %s, more than the interval (+10%% jitter, +2s slack) %s", took, limit)
	}
	if updated.Annotations["akeyless.io/content-hash"] == rotating.Annotations["akeyless.io/content-hash"] {
		t.Errorf("the content hash did not change with the content")
	}
	now, err := getSecret(ns, "steady")
	if err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != steady.ResourceVersion {
		t.Errorf("the unchanged Secret was rewritten (resourceVersion %s → %s)", steady.ResourceVersion, now.ResourceVersion)
	}
}

func countReads(t *testing.T, item string) int {
	t.Helper()
	reqs, err := emulator.Requests()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range reqs {
		for _, i := range r.Items {
			if i == item && r.Status == 200 {
				n++
			}
		}
	}
	return n
}

func TestUnboundOrMissingServiceAccountWarnsAndWritesNothing(t *testing.T) {
	ns := nsApp()
	createSPC(t, ns, "unbound", withAnnotation("akeyless.io/sync-service-account", "stranger"),
		withSecrets(secretObject("unbound-secret", "Opaque", "steady", "value")))
	note := waitForEvent(t, ns, "unbound", "Warning", "AuthFailed")
	t.Logf("Event note: %s", note)
	createSPC(t, ns, "missing-sa", withAnnotation("akeyless.io/sync-service-account", "nobody"),
		withSecrets(secretObject("missing-sa-secret", "Opaque", "steady", "value")))
	note = waitForEvent(t, ns, "missing-sa", "Warning", "TokenRequestFailed")
	if !strings.Contains(note, "nobody") {
		t.Errorf("the Event should name the ServiceAccount: %q", note)
	}
	for _, name := range []string{"unbound-secret", "missing-sa-secret"} {
		if _, err := getSecret(ns, name); !apierrors.IsNotFound(err) {
			t.Errorf("Secret %s: want NotFound, got %v", name, err)
		}
	}
}

func TestGuardsRefuseDriverManagedAndForeignSecrets(t *testing.T) {
	ns := nsApp()
	ctx := context.Background()
	mk := func(name string, labels map[string]string) *corev1.Secret {
		s, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Data:       map[string][]byte{"value": []byte("keep-me")}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	driverOwned := mk("driver-owned", map[string]string{"secrets-store.csi.k8s.io/managed": "true"})
	foreign := mk("foreign", nil)
	createSPC(t, ns, "guard-driver", withSecrets(secretObject("driver-owned", "Opaque", "steady", "value")))
	createSPC(t, ns, "guard-foreign", withSecrets(secretObject("foreign", "Opaque", "steady", "value")))
	note := waitForEvent(t, ns, "guard-driver", "Warning", "SecretManagedByDriver")
	if !strings.Contains(note, "driver-owned") {
		t.Errorf("Event should name the Secret: %q", note)
	}
	note = waitForEvent(t, ns, "guard-foreign", "Warning", "SecretNotOwned")
	if !strings.Contains(note, "foreign") {
		t.Errorf("Event should name the Secret: %q", note)
	}
	for _, s := range []*corev1.Secret{driverOwned, foreign} {
		now, err := getSecret(ns, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if now.ResourceVersion != s.ResourceVersion || string(now.Data["value"]) != "keep-me" {
			t.Errorf("Secret %s was modified", s.Name)
		}
	}
	// Once the owner deletes the foreign Secret, the retry (with backoff) writes ours.
	if err := kube.CoreV1().Secrets(ns).Delete(ctx, "foreign", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ours := waitForSecret(t, ns, "foreign", 30*time.Second, func(s *corev1.Secret) bool {
		return s.Labels["akeyless.io/sync-managed"] == "true"
	})
	if string(ours.Data["value"]) != "steady-value" {
		t.Errorf("recovered Secret holds %q", ours.Data["value"])
	}
	waitForEvent(t, ns, "guard-foreign", "Normal", "SecretSynced")
	// The failures are counted by reason; successes carry a per-SPC timestamp.
	text := scrape(t, controllers["sync-1"])
	for _, want := range []string{
		`akeyless_csi_provider_sync_failures_total{reason="SecretManagedByDriver"} `,
		`akeyless_csi_provider_sync_failures_total{reason="SecretNotOwned"} `,
		fmt.Sprintf(`akeyless_csi_provider_sync_last_success_timestamp_seconds{namespace=%q,name="app"} `, ns),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// A namespace outside --namespaces is refused, with an Event.
	createSPC(t, nsOutside(), "outside", withSecrets(secretObject("outside", "Opaque", "steady", "value")))
	waitForEvent(t, nsOutside(), "outside", "Warning", "NamespaceNotAllowed")
	if _, err := getSecret(nsOutside(), "outside"); !apierrors.IsNotFound(err) {
		t.Errorf("Secret outside the allowed namespaces: want NotFound, got %v", err)
	}
}

func TestDeletedOrEditedSecretIsRestoredPromptlyAndSPCDeletionRemovesIt(t *testing.T) {
	ns := nsApp()
	ctx := context.Background()
	// Interval 1h: only the watch can bring the Secret back within the test's time.
	createSPC(t, ns, "restore", withSecrets(secretObject("restored", "Opaque", "steady", "value")))
	first := waitForSecret(t, ns, "restored", 30*time.Second, nil)
	if err := kube.CoreV1().Secrets(ns).Delete(ctx, "restored", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	again := waitForSecret(t, ns, "restored", 20*time.Second, func(s *corev1.Secret) bool { return s.UID != first.UID })
	if string(again.Data["value"]) != "steady-value" {
		t.Errorf("recreated Secret holds %q", again.Data["value"])
	}
	again.Data["value"] = []byte("tampered")
	if _, err := kube.CoreV1().Secrets(ns).Update(ctx, again, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForSecret(t, ns, "restored", 20*time.Second, func(s *corev1.Secret) bool { return string(s.Data["value"]) == "steady-value" })

	// Deleting the SPC deletes its Secret: kube-controller-manager's garbage collector follows
	// the owner reference.
	if err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Delete(ctx, "restore", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := harness.Poll(60*time.Second, 200*time.Millisecond, "the garbage collector to delete the Secret", func() (bool, error) {
		_, err := getSecret(ns, "restored")
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSpecChangesAreReconciledPromptly(t *testing.T) {
	ns := nsApp()
	ctx := context.Background()
	// Interval 1h: only the SPC watch can apply the change within the test's time.
	createSPC(t, ns, "change", withSecrets(
		secretObject("change-a", "Opaque", "steady", "value"),
		secretObject("change-b", "Opaque", "rotating", "value"),
	))
	waitForSecret(t, ns, "change-a", 30*time.Second, nil)
	waitForSecret(t, ns, "change-b", 30*time.Second, nil)
	spc, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Get(ctx, "change", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Rename a key and stop declaring change-b.
	spc.Spec.SecretObjects = []*secretsstorev1.SecretObject{secretObject("change-a", "Opaque", "steady", "renamed")}
	if _, err := spcs.SecretsstoreV1().SecretProviderClasses(ns).Update(ctx, spc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForSecret(t, ns, "change-a", 20*time.Second, func(s *corev1.Secret) bool {
		_, old := s.Data["value"]
		return string(s.Data["renamed"]) == "steady-value" && !old
	})
	err = harness.Poll(20*time.Second, 100*time.Millisecond, "the undeclared Secret change-b to be deleted", func() (bool, error) {
		_, err := getSecret(ns, "change-b")
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Runs last (Go runs tests in file order): it replaces the first controller.
func TestLeaderElectionOneWriterAndFailover(t *testing.T) {
	ns := nsApp()
	second, err := startController("sync-2")
	if err != nil {
		t.Fatal(err)
	}
	first := controllers["sync-1"]
	lease, err := kube.CoordinationV1().Leases("kube-system").Get(context.Background(), leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := harness.Deref(lease.Spec.HolderIdentity, ""); got != "sync-1" {
		t.Fatalf("Lease holder = %q, want sync-1", got)
	}
	createSPC(t, ns, "leader", withSecrets(secretObject("leader-secret", "Opaque", "steady", "value")))
	waitForSecret(t, ns, "leader-secret", 30*time.Second, nil)
	if n := reconciles(t, first); n == 0 {
		t.Errorf("the leader recorded no reconciles")
	}
	if n := reconciles(t, second); n != 0 {
		t.Errorf("the standby reconciled %d times; only the leader may work", n)
	}

	// The leader dies without releasing the Lease: the standby takes over once it expires.
	if err := first.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	err = harness.Poll(6*leaseDuration, 200*time.Millisecond, "sync-2 to take the Lease", func() (bool, error) {
		l, err := kube.CoordinationV1().Leases("kube-system").Get(context.Background(), leaseName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return harness.Deref(l.Spec.HolderIdentity, "") == "sync-2", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(killed)
	t.Logf("failover after %s (lease duration %s)", took.Round(time.Millisecond), leaseDuration)
	if took < leaseDuration-time.Second {
		t.Errorf("the standby took the Lease after %s, before it expired (%s)", took, leaseDuration)
	}
	createSPC(t, ns, "after-failover", withSecrets(secretObject("after-failover", "Opaque", "steady", "value")))
	waitForSecret(t, ns, "after-failover", 30*time.Second, nil)
	if n := reconciles(t, second); n == 0 {
		t.Errorf("the new leader recorded no reconciles")
	}
}

var reconcileMetric = regexp.MustCompile(`(?m)^akeyless_csi_provider_sync_reconciles_total\{result="(ok|error)"\} (\d+)`)

func scrape(t *testing.T, c *controller) string {
	t.Helper()
	resp, err := http.Get(c.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func reconciles(t *testing.T, c *controller) int {
	t.Helper()
	body := scrape(t, c)
	n := 0
	found := false
	for _, m := range reconcileMetric.FindAllStringSubmatch(string(body), -1) {
		var v int
		fmt.Sscan(m[2], &v)
		n += v
		found = true
	}
	if !found {
		t.Fatalf("no sync_reconciles_total in %s", c.metrics)
	}
	return n
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
