package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

const basicObjects = `
- secretPath: /e2e/foo
  fileName: foo
- secretPath: /e2e/db
  fileName: db-username
  key: username
`

// vault.bats / akeyless.bats "CSI inline volume test with pod portability - read secret from pod".
func TestMountAndReadFiles(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("basic")
	createSPC(t, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, ns, uniqueName("reader"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")

	if !isMountPoint(t, target) {
		t.Errorf("%s is not a mount point; the driver should have mounted tmpfs", target)
	}
	if got := readFile(t, filepath.Join(target, "foo")); got != "foo-value" {
		t.Errorf("foo = %q", got)
	}
	if got := readFile(t, filepath.Join(target, "db-username")); got != "app-user" {
		t.Errorf("db-username = %q", got)
	}
	if _, err := os.Readlink(filepath.Join(target, "..data")); err != nil {
		t.Errorf("no ..data link: the files were not written by the driver's atomic writer: %v", err)
	}

	status := podStatus(t, pod, spc)
	if !status.Status.Mounted || status.Status.PodName != pod.Name || status.Status.SecretProviderClassName != spc {
		t.Errorf("SPCPS status = %+v", status.Status)
	}
	if status.Labels[secretsstorev1.InternalNodeLabel] != nodeName {
		t.Errorf("SPCPS labels = %v, want the node label", status.Labels)
	}
	if len(status.OwnerReferences) != 1 || status.OwnerReferences[0].UID != pod.UID {
		t.Errorf("SPCPS owner references = %+v, want the pod", status.OwnerReferences)
	}
	v := versions(status)
	if len(v) != 2 || !strings.HasPrefix(v["foo"], "h-") || !strings.HasPrefix(v["db-username"], "h-") {
		t.Errorf("SPCPS object versions = %v, want h-<hash> for both objects", v)
	}

	// The gateway saw the pod's own identity, established by the apiserver's TokenReview.
	reqs, err := emulator.Requests()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reqs {
		if r.Path == "/auth" && r.Status == 200 && r.Identity != nil && r.Identity.PodUID == string(pod.UID) {
			found = r.Identity.Namespace == ns && r.Identity.ServiceAccount == "app"
		}
	}
	if !found {
		t.Errorf("no successful /auth as %s/app for pod uid %s in the emulator's log", ns, pod.UID)
	}
}

func TestNestedFilePaths(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("nested")
	createSPC(t, ns, spc, `
- secretPath: /e2e/foo
  fileName: nested/bar
- secretPath: /e2e/db
  fileName: nested/deeper/password
  key: password
- secretPath: /e2e/db
  fileName: db
  explode: true
`, nil, nil)
	pod := createPod(t, ns, uniqueName("nested"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")
	for file, want := range map[string]string{
		"nested/bar":             "foo-value",
		"nested/deeper/password": "app-pass",
		"db/username":            "app-user",
		"db/password":            "app-pass",
	} {
		if got := readFile(t, filepath.Join(target, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

func TestFileModes(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("modes")
	createSPC(t, ns, spc, `
- secretPath: /e2e/foo
  fileName: default-mode
- secretPath: /e2e/foo
  fileName: owner-only
  mode: "0400"
- secretPath: /e2e/foo
  fileName: decimal-mode
  mode: 288
`, nil, nil)
	pod := createPod(t, ns, uniqueName("modes"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")
	for file, want := range map[string]os.FileMode{
		"default-mode": 0o644, // the driver's permission, 420
		"owner-only":   0o400,
		"decimal-mode": 0o440, // 288 decimal
	} {
		st, err := os.Stat(filepath.Join(target, file))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %o, want %o", file, st.Mode().Perm(), want)
		}
	}
}

// "CSI inline volume test with pod portability - unmount succeeds".
func TestUnmount(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("unmount")
	createSPC(t, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, ns, uniqueName("unmount"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")
	if err := unpublish(testCtx(t), pod, "secrets"); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if isMountPoint(t, target) {
		t.Error("target path is still mounted")
	}
	if entries, err := os.ReadDir(target); err == nil && len(entries) > 0 {
		t.Errorf("target path still holds %d entries", len(entries))
	}
	if strings.Contains(driver.Log(), "failed to clean and unmount target path") {
		t.Error("the driver logged a failed unmount")
	}
}

// vault.bats "rotation succeeds": change the item; the mount follows within the poll interval,
// by the path of this driver version (see driverPaths): kubelet's republish (v1.6.0) or the
// driver's own rotation reconciler (up to v1.5). The request that rotated shows which.
func TestRotation(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("rotation")
	createSPCFor(t, observedProvider, ns, spc, `
- secretPath: /e2e/rotating
  fileName: rotating
- secretPath: /e2e/steady
  fileName: steady
`, nil, nil)
	pod := createPod(t, ns, uniqueName("rotation"), "app", map[string]string{"secrets": spc})
	first, err := publishCall(testCtx(t), pod, "secrets")
	if err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	target := targetPath(pod, "secrets")
	t.Cleanup(func() { _ = unpublish(context.Background(), pod, "secrets") })
	before := versions(podStatus(t, pod, spc))
	if got := readFile(t, filepath.Join(target, "rotating")); got != "rotation-v1" {
		t.Fatalf("rotating = %q before rotation", got)
	}

	if _, err := emulator.PutStaticSecret("/e2e/rotating", "rotation-v2"); err != nil {
		t.Fatal(err)
	}
	rotated := func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(target, "rotating"))
		if err != nil || string(b) != "rotation-v2" {
			return false, err
		}
		return versions(podStatus(t, pod, spc))["rotating"] != before["rotating"], nil
	}
	kubeletTokens := map[string]bool{first.tokens: true}
	if paths.reconcilerRotation {
		// kubelet never republishes (this driver's CSIDriver has no requiresRepublish), and a
		// NodePublishVolume on the mounted path returns at once without the provider.
		if err := publish(testCtx(t), pod, "secrets"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(driver.Log(), `"target path is already mounted" targetPath="`+target+`"`) {
			t.Errorf("driver %s did not short-circuit the NodePublishVolume of a mounted path", driverVersion)
		}
		poll(t, 60*time.Second, "the rotation reconciler to bring the rotated value", rotated)
	} else {
		// A republish within the poll interval does not call the provider.
		calls := len(observedMounts(t, pod))
		if err := republish(t, pod, "secrets"); err != nil {
			t.Fatal(err)
		}
		if len(observedMounts(t, pod)) != calls {
			t.Error("the driver called the provider within --rotation-poll-interval")
		}
		// kubelet republishes periodically; once the interval has passed the driver remounts.
		poll(t, 30*time.Second, "a republish to bring the rotated value", func() (bool, error) {
			call, err := publishCall(testCtx(t), pod, "secrets")
			if err != nil {
				return false, err
			}
			kubeletTokens[call.tokens] = true
			return rotated()
		})
	}
	after := versions(podStatus(t, pod, spc))
	if after["steady"] != before["steady"] {
		t.Errorf("SPCPS version of the unchanged object changed: %q -> %q", before["steady"], after["steady"])
	}
	if got := readFile(t, filepath.Join(target, "steady")); got != "steady-value" {
		t.Errorf("steady = %q", got)
	}

	// The first remount shows the path: up to v1.5 the reconciler's first request (made while
	// the SPCPS held the first versions), for v1.6.0 the republish that rotated.
	mounts := observedMounts(t, pod)
	if len(mounts) < 2 {
		t.Fatal("no remount reached the provider")
	}
	m := mounts[1]
	if paths.reconcilerRotation {
		if _, ok := m.attributes["secretProviderClass"]; ok {
			t.Error("a reconciler remount carries secretProviderClass: not the reconciler's request")
		}
		if m.current["rotating"] != before["rotating"] || m.current["steady"] != before["steady"] {
			t.Errorf("current_object_version = %v, want the SPCPS versions %v", m.current, before)
		}
		if m.secretsRaw != "{}" {
			t.Errorf("reconciler secrets = %q, want {}", m.secretsRaw)
		}
		if kubeletTokens[m.attributes[attrTokens]] {
			t.Error("the reconciler forwarded a kubelet token; it mints its own")
		}
		assertBoundToPod(t, "the reconciler's tokens", m.attributes[attrTokens], pod)
	} else {
		if m.attributes["secretProviderClass"] != spc || len(m.current) != 0 {
			t.Errorf("republish remount: secretProviderClass %q, current versions %v; want %s, none",
				m.attributes["secretProviderClass"], m.current, spc)
		}
		if !kubeletTokens[m.attributes[attrTokens]] {
			t.Error("the republish remount does not carry the tokens kubelet sent")
		}
	}
}

// With nothing changed, a remount after the poll interval calls the provider but the driver's
// atomic writer rewrites nothing.
func TestRotationUnchangedIsNoRewrite(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("steady")
	createSPCFor(t, observedProvider, ns, spc, "- secretPath: /e2e/steady\n  fileName: steady\n", nil, nil)
	pod := createPod(t, ns, uniqueName("steady"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")
	data, err := os.Readlink(filepath.Join(target, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	before := versions(podStatus(t, pod, spc))
	calls := len(observedMounts(t, pod))
	poll(t, 30*time.Second, "a remount that reaches the provider", func() (bool, error) {
		if !paths.reconcilerRotation {
			if err := republish(t, pod, "secrets"); err != nil {
				return false, err
			}
		}
		return len(observedMounts(t, pod)) > calls, nil
	})
	if again, _ := os.Readlink(filepath.Join(target, "..data")); again != data {
		t.Errorf("unchanged secrets were rewritten: ..data %s -> %s", data, again)
	}
	if st2, _ := os.Stat(target); !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("target mtime changed: %v -> %v", st.ModTime(), st2.ModTime())
	}
	if after := versions(podStatus(t, pod, spc)); after["steady"] != before["steady"] {
		t.Errorf("object version changed without a change: %v -> %v", before, after)
	}
}

// vault.bats "Sync with K8s secrets": the driver's controller creates the Secret with the
// right keys, labels, annotations and owners; deleting the pods garbage-collects it.
func TestSyncToKubernetesSecret(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("sync")
	secretName := uniqueName("synced")
	createSPC(t, ns, spc, `
- secretPath: /e2e/foo
  fileName: foo
- secretPath: /e2e/foo
  fileName: nested/bar
- secretPath: /e2e/db
  fileName: username
  key: username
`, nil, []*secretsstorev1.SecretObject{{
		SecretName:  secretName,
		Type:        "Opaque",
		Labels:      map[string]string{"environment": "e2e"},
		Annotations: map[string]string{"kubed.appscode.com/sync": "app=test"},
		Data: []*secretsstorev1.SecretObjectData{
			{ObjectName: "foo", Key: "foo"},
			{ObjectName: "nested/bar", Key: "nested"},
			{ObjectName: "username", Key: "username"},
		},
	}})
	pod1 := createPod(t, ns, uniqueName("sync-a"), "app", map[string]string{"secrets": spc})
	pod2 := createPod(t, ns, uniqueName("sync-b"), "app", map[string]string{"secrets": spc})
	mustPublish(t, pod1, "secrets")
	mustPublish(t, pod2, "secrets")

	var secret *corev1.Secret
	poll(t, 60*time.Second, "the synced Secret with both pods' owners", func() (bool, error) {
		s, err := kube.CoreV1().Secrets(ns).Get(testCtx(t), secretName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		secret = s
		return len(s.OwnerReferences) == 2, nil
	})
	for key, want := range map[string]string{"foo": "foo-value", "nested": "foo-value", "username": "app-user"} {
		if got := string(secret.Data[key]); got != want {
			t.Errorf("secret key %s = %q, want %q", key, got, want)
		}
	}
	if secret.Type != corev1.SecretTypeOpaque || len(secret.Data) != 3 {
		t.Errorf("secret type %s with %d keys", secret.Type, len(secret.Data))
	}
	if secret.Labels["environment"] != "e2e" || secret.Labels["secrets-store.csi.k8s.io/managed"] != "true" {
		t.Errorf("secret labels = %v", secret.Labels)
	}
	if secret.Annotations["kubed.appscode.com/sync"] != "app=test" {
		t.Errorf("secret annotations = %v", secret.Annotations)
	}
	owners := map[string]bool{}
	for _, o := range secret.OwnerReferences {
		owners[o.Name] = o.Kind == "SecretProviderClassPodStatus"
	}
	for _, p := range []*corev1.Pod{pod1, pod2} {
		if !owners[p.Name+"-"+ns+"-"+spc] {
			t.Errorf("secret owners = %+v, want the SPCPS of pod %s", secret.OwnerReferences, p.Name)
		}
	}

	// kubelet unmounts, the pods go; kube-controller-manager's garbage collector removes the
	// pods' SPCPS, then the Secret once its last owner is gone.
	for _, p := range []*corev1.Pod{pod1, pod2} {
		if err := unpublish(testCtx(t), p, "secrets"); err != nil {
			t.Fatal(err)
		}
	}
	deletePod(t, pod1)
	poll(t, 60*time.Second, "the Secret to lose the deleted pod's owner", func() (bool, error) {
		s, err := kube.CoreV1().Secrets(ns).Get(testCtx(t), secretName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(s.OwnerReferences) == 1, nil
	})
	deletePod(t, pod2)
	poll(t, 90*time.Second, "the Secret to be garbage-collected", func() (bool, error) {
		_, err := kube.CoreV1().Secrets(ns).Get(testCtx(t), secretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// vault.bats "Test Namespaced scope SecretProviderClass": an SPC serves pods of its namespace.
func TestNamespacedSecretProviderClass(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("scoped")
	createSPC(t, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, ns, uniqueName("scoped"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")
	if got := readFile(t, filepath.Join(target, "foo")); got != "foo-value" {
		t.Errorf("foo = %q", got)
	}
	if ps := podStatus(t, pod, spc); ps.Namespace != ns {
		t.Errorf("SPCPS namespace = %s", ps.Namespace)
	}
}

// vault.bats "Should fail when no secret provider class in same namespace".
func TestNamespacedSecretProviderClassNegative(t *testing.T) {
	ns, neg := nsA(), nsNeg()
	ensureNamespace(t, ns)
	ensureNamespace(t, neg)
	spc := uniqueName("elsewhere")
	createSPC(t, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, neg, uniqueName("negative"), "app", map[string]string{"secrets": spc})
	err := publish(testCtx(t), pod, "secrets")
	// kubelet shows this error as the pod's FailedMount event.
	want := "failed to get secretproviderclass " + neg + "/" + spc
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("NodePublishVolume err = %v, want %q ... not found", err, want)
	}
	target := targetPath(pod, "secrets")
	if isMountPoint(t, target) {
		t.Error("failed mount left a mount point")
	}
}

// vault.bats "CSI inline volume test with multiple secret provider class".
func TestMultipleSecretProviderClasses(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc1, spc2 := uniqueName("multi-one"), uniqueName("multi-two")
	createSPC(t, ns, spc1, "- secretPath: /e2e/foo\n  fileName: foo\n", nil, nil)
	createSPC(t, ns, spc2, "- secretPath: /e2e/db\n  fileName: user\n  key: username\n", nil, nil)
	pod := createPod(t, ns, uniqueName("multi"), "app", map[string]string{"one": spc1, "two": spc2})
	t1 := mustPublish(t, pod, "one")
	t2 := mustPublish(t, pod, "two")
	if got := readFile(t, filepath.Join(t1, "foo")); got != "foo-value" {
		t.Errorf("one/foo = %q", got)
	}
	if got := readFile(t, filepath.Join(t2, "user")); got != "app-user" {
		t.Errorf("two/user = %q", got)
	}
	if _, err := os.Stat(filepath.Join(t1, "user")); err == nil {
		t.Error("volume one holds volume two's file")
	}
	podStatus(t, pod, spc1)
	podStatus(t, pod, spc2)
}

// A pod whose service account is not bound in the Akeyless auth method: /auth is refused
// (the gateway's TokenReview identifies the service account) and the pod gets no files.
func TestUnboundServiceAccountGetsNoFiles(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	spc := uniqueName("intruder")
	createSPC(t, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, ns, uniqueName("intruder"), "intruder", map[string]string{"secrets": spc})
	err := publish(testCtx(t), pod, "secrets")
	if err == nil || !strings.Contains(err.Error(), "[AuthFailed]") || !strings.Contains(err.Error(), "intruder") {
		t.Fatalf("NodePublishVolume err = %v, want [AuthFailed] naming the service account", err)
	}
	if c := status.Code(err); c != codes.Unauthenticated {
		t.Errorf("status code %s, want Unauthenticated (the provider's AuthFailed)", c)
	}
	assertNoFiles(t, pod, "secrets")
}

// A pod that authenticates but whose namespace is not granted the item (a namespace
// sub-claim on the role): PermissionDenied, no files.
func TestUngrantedNamespacePermissionDenied(t *testing.T) {
	ns := nsB()
	ensureNamespace(t, ns)
	spc := uniqueName("denied")
	createSPC(t, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, ns, uniqueName("denied"), "app", map[string]string{"secrets": spc})
	err := publish(testCtx(t), pod, "secrets")
	if err == nil || !strings.Contains(err.Error(), "[PermissionDenied]") {
		t.Fatalf("NodePublishVolume err = %v, want [PermissionDenied]", err)
	}
	if c := status.Code(err); c != codes.PermissionDenied {
		t.Errorf("status code %s, want PermissionDenied", c)
	}
	assertNoFiles(t, pod, "secrets")
}

func assertNoFiles(t *testing.T, pod *corev1.Pod, volume string) {
	t.Helper()
	target := targetPath(pod, volume)
	if isMountPoint(t, target) {
		t.Error("a failed first mount left the tmpfs mounted")
	}
	if entries, err := os.ReadDir(target); err == nil && len(entries) > 0 {
		t.Errorf("a failed mount left %d entries", len(entries))
	}
	_, err := spcs.SecretsstoreV1().SecretProviderClassPodStatuses(pod.Namespace).List(testCtx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// The CSIDriver's tokenRequests audiences reach the provider; the SPC's akeylessTokenAudience
// picks one, and the gateway's TokenReview for its audience accepts only that token.
func TestTokenAudience(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	good, wrong, unset := uniqueName("aud-good"), uniqueName("aud-wrong"), uniqueName("aud-unset")
	createSPC(t, ns, good, basicObjects, nil, nil)
	createSPC(t, ns, wrong, basicObjects, map[string]string{"akeylessTokenAudience": otherAud}, nil)
	createSPC(t, ns, unset, basicObjects, map[string]string{"akeylessTokenAudience": ""}, nil)
	pod := createPod(t, ns, uniqueName("audience"), "app", map[string]string{"good": good, "wrong": wrong, "unset": unset})

	call, err := kubeletRequest(testCtx(t), pod, "good")
	if err != nil {
		t.Fatal(err)
	}
	tokens := call.volumeContext[attrTokens]
	if !strings.Contains(tokens, `"`+audience+`"`) || !strings.Contains(tokens, `"`+otherAud+`"`) {
		t.Fatal("kubelet-style tokens do not carry the CSIDriver's two audiences")
	}

	target := mustPublish(t, pod, "good")
	if got := readFile(t, filepath.Join(target, "foo")); got != "foo-value" {
		t.Errorf("foo = %q", got)
	}

	err = publish(testCtx(t), pod, "wrong")
	if err == nil || !strings.Contains(err.Error(), "[AuthFailed]") || !strings.Contains(err.Error(), "audience") {
		t.Errorf("token for %s: err = %v, want [AuthFailed] about the audience", otherAud, err)
	}
	assertNoFiles(t, pod, "wrong")

	err = publish(testCtx(t), pod, "unset")
	if err == nil || !strings.Contains(err.Error(), "[InvalidConfig]") || !strings.Contains(err.Error(), otherAud) {
		t.Errorf("two tokens and no akeylessTokenAudience: err = %v, want [InvalidConfig] naming the audiences", err)
	}
}

// A provider response the driver must refuse (through the corrupting proxy): the mount fails
// with the driver's own error and nothing is left mounted. Shows this suite can fail.
func TestBrokenProviderResponseFailsMount(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	cases := []struct {
		name    string
		corrupt func(*v1alpha1.MountResponse)
		want    string
	}{
		{"dot-dot path", func(r *v1alpha1.MountResponse) { r.Files[0].Path = "../escape" },
			"invalid path: must not contain '..'"},
		{"missing object versions", func(r *v1alpha1.MountResponse) { r.ObjectVersion = nil },
			"missing object versions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			broken.SetCorruption(tc.corrupt)
			defer broken.SetCorruption(func(*v1alpha1.MountResponse) {})
			spc := uniqueName("broken")
			createSPCFor(t, brokenProvider, ns, spc, basicObjects, nil, nil)
			pod := createPod(t, ns, uniqueName("broken"), "app", map[string]string{"secrets": spc})
			err := publish(testCtx(t), pod, "secrets")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NodePublishVolume err = %v, want the driver's %q", err, tc.want)
			}
			assertNoFiles(t, pod, "secrets")
		})
	}
	// The same SPC through the proxy without corruption mounts fine.
	spc := uniqueName("proxied")
	createSPCFor(t, brokenProvider, ns, spc, basicObjects, nil, nil)
	pod := createPod(t, ns, uniqueName("proxied"), "app", map[string]string{"secrets": spc})
	target := mustPublish(t, pod, "secrets")
	if got := readFile(t, filepath.Join(target, "foo")); got != "foo-value" {
		t.Errorf("foo through the proxy = %q", got)
	}
}
