// Package driver runs a real Secrets Store CSI Driver binary (each version of the list in
// tests/e2e/lib.sh, one `go test` run per version, E2E_DRIVER_VERSION) against our provider, a
// real kube-apiserver (with etcd and kube-controller-manager) and the Akeyless emulator, whose
// Kubernetes auth validates pod tokens with a real TokenReview. The test plays kubelet: it
// creates Pod objects, mints their service-account tokens with the TokenRequest API for the
// CSIDriver's tokenRequests audiences, and calls the driver's CSI NodePublishVolume /
// NodeUnpublishVolume with kubelet's volume context, secrets and target-path shape.
// Where driver versions hand a mount to the provider differently, the tests assert this
// version's path (paths_test.go).
//
// Run it through tests/e2e/run.sh, which builds the components and starts the control plane.
package driver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	spcclient "sigs.k8s.io/secrets-store-csi-driver/pkg/client/clientset/versioned"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/akeyless-csi-provider/tests/e2e/suite/internal/harness"
)

const (
	driverName   = "secrets-store.csi.k8s.io"
	nodeName     = "e2e-node"
	k8sAccessID  = "p-e2e-k8s"
	k8sConfig    = "e2e-cluster"
	audience     = "akeyless"
	otherAud     = "other-audience"
	rotationPoll = 5 * time.Second
	// brokenProvider is the provider name of the corrupting proxy (harness.BrokenProxy).
	brokenProvider = "akeyless-broken"
	// observedProvider is the provider name of a proxy that only records what the driver sends.
	observedProvider = "akeyless-observed"
)

var (
	kube     *kubernetes.Clientset
	spcs     *spcclient.Clientset
	emulator *harness.Emulator
	provider *harness.Provider
	driver   *harness.Proc
	broken   *harness.BrokenProxy
	observed *harness.BrokenProxy
	node     csi.NodeClient
	// driverVersion is the driver under test; paths is how it hands mounts to the provider.
	driverVersion string
	paths         driverPaths
	workDir       string
	runID         string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", args...)
	return 1
}

func run(m *testing.M) int {
	env, err := harness.MustEnv("E2E_PROVIDER_BIN", "E2E_EMULATOR_BIN", "E2E_DRIVER_BIN", "E2E_DRIVER_MODULE_DIR",
		"E2E_DRIVER_VERSION", "KUBECONFIG", "E2E_API_SERVER", "E2E_CA_FILE")
	if err != nil {
		return fail("%v", err)
	}
	driverVersion = env["E2E_DRIVER_VERSION"]
	if paths, err = pathsOf(driverVersion); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: Secrets Store CSI Driver %s (%s)\n", driverVersion, paths)
	if os.Geteuid() != 0 {
		return fail("the CSI driver mounts tmpfs and needs root")
	}
	workDir, err = os.MkdirTemp(os.Getenv("E2E_WORK_DIR"), "driver-")
	if err != nil {
		return fail("%v", err)
	}
	runID = filepath.Base(workDir)[len("driver-"):]
	runID = strings.ToLower(runID)
	logDir := filepath.Join(workDir, "logs")
	defer unmountLeftovers(workDir)

	if kube, spcs, err = harness.Clients(env["KUBECONFIG"]); err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The driver's own manifests, from its module: CRDs, every RBAC file (its service account
	// and roles: Secret sync, and up to v1.5 rotation and TokenRequest), and its CSIDriver object
	// with the token requests a cluster admin adds.
	deploy := filepath.Join(env["E2E_DRIVER_MODULE_DIR"], "deploy")
	rbac, err := filepath.Glob(filepath.Join(deploy, "rbac-*.yaml"))
	if err != nil || len(rbac) == 0 {
		return fail("no rbac-*.yaml in %s (%v)", deploy, err)
	}
	files := []string{
		filepath.Join(deploy, "secrets-store.csi.x-k8s.io_secretproviderclasses.yaml"),
		filepath.Join(deploy, "secrets-store.csi.x-k8s.io_secretproviderclasspodstatuses.yaml"),
	}
	if err := harness.Apply(append(files, rbac...),
		"secretproviderclasses.secrets-store.csi.x-k8s.io",
		"secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io"); err != nil {
		return fail("%v", err)
	}
	// The next version's run on this control plane gets only its own RBAC; this run's
	// namespaces go (the garbage collector then removes their pods' SPCPS, which a v1.5
	// rotation reconciler would otherwise keep retrying).
	defer func() {
		if out, err := harness.Kubectl(append([]string{"delete", "--ignore-not-found", "--wait=false"}, kubectlFiles(rbac)...)...); err != nil {
			fmt.Fprintf(os.Stderr, "e2e cleanup: %v\n%s", err, out)
		}
		for _, ns := range []string{nsA(), nsB(), nsNeg()} {
			_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	}()
	if err := applyCSIDriver(ctx, filepath.Join(deploy, "csidriver.yaml")); err != nil {
		return fail("CSIDriver: %v", err)
	}
	if err := ensureNode(ctx); err != nil {
		return fail("node: %v", err)
	}

	// The driver runs as its own service account, with only the RBAC its manifests grant.
	driverToken, err := harness.ServiceAccountToken(ctx, kube, "kube-system", "secrets-store-csi-driver")
	if err != nil {
		return fail("driver token: %v", err)
	}
	driverKubeconfig := filepath.Join(workDir, "driver.kubeconfig")
	if err := harness.WriteTokenKubeconfig(driverKubeconfig, env["E2E_API_SERVER"], env["E2E_CA_FILE"], driverToken); err != nil {
		return fail("%v", err)
	}

	// The gateway's token reviewer: a service account bound to system:auth-delegator.
	reviewerToken, err := harness.TokenReviewer(ctx, kube, "akeyless-token-reviewer")
	if err != nil {
		return fail("token reviewer: %v", err)
	}
	caPEM, err := os.ReadFile(env["E2E_CA_FILE"])
	if err != nil {
		return fail("%v", err)
	}

	emulator, err = harness.StartEmulator(env["E2E_EMULATOR_BIN"], logDir)
	if err != nil {
		return fail("emulator: %v", err)
	}
	defer emulator.Stop()
	if err := emulator.Seed(seed(env["E2E_API_SERVER"], string(caPEM), reviewerToken)); err != nil {
		return fail("seed: %v", err)
	}

	providerDir := filepath.Join(workDir, "providers")
	provider, err = harness.StartProvider(env["E2E_PROVIDER_BIN"], logDir, providerDir, emulator.URL)
	if err != nil {
		return fail("provider: %v", err)
	}
	defer provider.Stop()
	// A second "provider" in the same directory that corrupts our provider's responses, and a
	// third that forwards them untouched and records what the driver sent.
	broken, err = harness.StartBrokenProxy(providerDir, brokenProvider, provider.Socket, func(*v1alpha1.MountResponse) {})
	if err != nil {
		return fail("broken proxy: %v", err)
	}
	defer broken.Stop()
	observed, err = harness.StartBrokenProxy(providerDir, observedProvider, provider.Socket, func(*v1alpha1.MountResponse) {})
	if err != nil {
		return fail("observing proxy: %v", err)
	}
	defer observed.Stop()

	csiSock := filepath.Join(workDir, "csi.sock")
	driver, err = harness.Start("secrets-store-csi-driver", logDir, env["E2E_DRIVER_BIN"], []string{
		"--endpoint", "unix://" + csiSock,
		"--nodeid", nodeName,
		"--provider-volume", providerDir,
		"--additional-provider-volume-paths", providerDir,
		"--enable-secret-rotation=true",
		"--rotation-poll-interval", rotationPoll.String(),
		"--metrics-addr", "127.0.0.1:0",
		"-v", "2",
	}, []string{"KUBECONFIG=" + driverKubeconfig})
	if err != nil {
		return fail("driver: %v", err)
	}
	defer driver.Stop()
	conn, err := harness.DialUnix(csiSock)
	if err != nil {
		return fail("%v", err)
	}
	defer conn.Close()
	identity := csi.NewIdentityClient(conn)
	err = harness.Poll(60*time.Second, 200*time.Millisecond, "the CSI driver's Probe", func() (bool, error) {
		if driver.Exited() {
			return false, fmt.Errorf("%w: driver exited:\n%s", harness.ErrStop, driver.Tail(30))
		}
		if _, err := os.Stat(csiSock); err != nil {
			return false, nil
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		info, err := identity.GetPluginInfo(pctx, &csi.GetPluginInfoRequest{})
		if err != nil {
			return false, err
		}
		return info.GetName() == driverName, nil
	})
	if err != nil {
		return fail("%v", err)
	}
	node = csi.NewNodeClient(conn)

	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- driver log (last 40 lines)\n%s\n--- provider log (last 20 lines)\n%s\n--- logs kept in %s\n",
			driver.Tail(40), provider.Proc.Tail(20), logDir)
	}
	return code
}

// applyCSIDriver creates the driver version's CSIDriver object (its deploy/csidriver.yaml:
// v1.6.0 sets requiresRepublish, earlier versions do not) with the tokenRequests a cluster
// admin adds for pod-identity auth (as the Helm chart's `tokenRequests` value does): two
// audiences, so the SPC must pick one.
func applyCSIDriver(ctx context.Context, manifest string) error {
	raw, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	want := &storagev1.CSIDriver{}
	if err := yaml.UnmarshalStrict(raw, want); err != nil {
		return fmt.Errorf("%s: %w", manifest, err)
	}
	if want.Name != driverName {
		return fmt.Errorf("%s names CSIDriver %q, want %q", manifest, want.Name, driverName)
	}
	want.Spec.TokenRequests = []storagev1.TokenRequest{
		{Audience: audience, ExpirationSeconds: harness.Ptr[int64](600)},
		{Audience: otherAud, ExpirationSeconds: harness.Ptr[int64](600)},
	}
	c := kube.StorageV1().CSIDrivers()
	existing, err := c.Get(ctx, driverName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	existing.Spec = want.Spec
	_, err = c.Update(ctx, existing, metav1.UpdateOptions{})
	return err
}

func ensureNode(ctx context.Context) error {
	_, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Namespaces of this run (unique per run, so a reused control plane never collides).
func nsA() string   { return "team-a-" + runID }
func nsB() string   { return "team-b-" + runID }
func nsNeg() string { return "negative-" + runID }

// seed configures the emulated gateway: a Kubernetes auth config pointing at the real
// apiserver (TokenReview), a k8s auth method bound to namespaces team-a and team-b and to the
// service account `app`, read grants on /e2e/* for team-a only (a namespace sub-claim), and
// the items.
func seed(apiServer, caPEM, reviewerToken string) map[string]any {
	return map[string]any{
		"k8s_auth_configs": []map[string]any{{
			"name": k8sConfig, "api_server": apiServer, "ca_cert_pem": caPEM,
			"token_reviewer_jwt": reviewerToken,
		}},
		"auth_methods": []map[string]any{{
			"type": "k8s", "access_id": k8sAccessID, "config_name": k8sConfig,
			"bound_namespaces":       []string{nsA(), nsB()},
			"bound_service_accounts": []string{"app"},
			"audience":               audience,
		}},
		"grants": []map[string]any{
			{"access_id": k8sAccessID, "path": "/e2e/*", "namespaces": []string{nsA()}},
		},
		"items": []map[string]any{
			{"type": "static_secret", "name": "/e2e/foo", "versions": []string{"foo-value"}},
			{"type": "static_secret", "name": "/e2e/db", "versions": []string{`{"username":"app-user","password":"app-pass"}`}},
			{"type": "static_secret", "name": "/e2e/rotating", "versions": []string{"rotation-v1"}},
			{"type": "static_secret", "name": "/e2e/steady", "versions": []string{"steady-value"}},
		},
	}
}

// unmountLeftovers unmounts any tmpfs the driver left under dir (a test that failed midway).
func unmountLeftovers(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			_ = syscall.Unmount(fields[1], syscall.MNT_DETACH)
		}
	}
}

// kubectlFiles turns manifest paths into kubectl -f arguments.
func kubectlFiles(files []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	return args
}
