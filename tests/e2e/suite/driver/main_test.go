// Package driver runs the real Secrets Store CSI Driver v1.6.0 binary against our provider, a
// real kube-apiserver (with etcd and kube-controller-manager) and the Akeyless emulator, whose
// Kubernetes auth validates pod tokens with a real TokenReview. The test plays kubelet: it
// creates Pod objects, mints their service-account tokens with the TokenRequest API for the
// CSIDriver's tokenRequests audiences, and calls the driver's CSI NodePublishVolume /
// NodeUnpublishVolume with kubelet's volume context and target-path shape.
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	spcclient "sigs.k8s.io/secrets-store-csi-driver/pkg/client/clientset/versioned"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

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
)

var (
	kube     *kubernetes.Clientset
	spcs     *spcclient.Clientset
	emulator *harness.Emulator
	provider *harness.Provider
	driver   *harness.Proc
	broken   *harness.BrokenProxy
	node     csi.NodeClient
	workDir  string
	runID    string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", args...)
	return 1
}

func run(m *testing.M) int {
	env, err := harness.MustEnv("E2E_PROVIDER_BIN", "E2E_DRIVER_BIN", "E2E_DRIVER_MODULE_DIR",
		"KUBECONFIG", "E2E_API_SERVER", "E2E_CA_FILE")
	if err != nil {
		return fail("%v", err)
	}
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

	// The driver's own manifests, from its module: CRDs, RBAC (its service account and roles,
	// including Secret sync), and our CSIDriver object with token requests.
	deploy := filepath.Join(env["E2E_DRIVER_MODULE_DIR"], "deploy")
	var files []string
	for _, f := range []string{
		"secrets-store.csi.x-k8s.io_secretproviderclasses.yaml",
		"secrets-store.csi.x-k8s.io_secretproviderclasspodstatuses.yaml",
		"rbac-secretproviderclass.yaml",
		"rbac-secretprovidersyncing.yaml",
	} {
		files = append(files, filepath.Join(deploy, f))
	}
	if err := harness.Apply(files,
		"secretproviderclasses.secrets-store.csi.x-k8s.io",
		"secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io"); err != nil {
		return fail("%v", err)
	}
	if err := applyCSIDriver(ctx); err != nil {
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

	emulator, err = harness.StartEmulator(env["E2E_PROVIDER_BIN"], logDir)
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
	// A second "provider" in the same directory that corrupts our provider's responses.
	broken, err = harness.StartBrokenProxy(providerDir, brokenProvider, provider.Socket, func(*v1alpha1.MountResponse) {})
	if err != nil {
		return fail("broken proxy: %v", err)
	}
	defer broken.Stop()

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
	conn, err := grpc.NewClient("unix://"+csiSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
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

// applyCSIDriver creates the driver's CSIDriver object (deploy/csidriver.yaml) with the
// tokenRequests a cluster admin adds for pod-identity auth (as the Helm chart's
// `tokenRequests` value does): two audiences, so the SPC must pick one.
func applyCSIDriver(ctx context.Context) error {
	want := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: driverName},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       ptr.To(false),
			PodInfoOnMount:       ptr.To(true),
			RequiresRepublish:    ptr.To(true),
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral},
			TokenRequests: []storagev1.TokenRequest{
				{Audience: audience, ExpirationSeconds: ptr.To[int64](600)},
				{Audience: otherAud, ExpirationSeconds: ptr.To[int64](600)},
			},
		},
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
