package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/akeyless-csi-provider/tests/e2e/suite/internal/harness"
)

// What kubelet does for a CSI inline volume, reduced to the calls the driver sees.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func ensureServiceAccount(t *testing.T, namespace, name string) {
	t.Helper()
	_, err := kube.CoreV1().ServiceAccounts(namespace).Create(testCtx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// createSPC creates a SecretProviderClass for provider akeyless with k8s auth.
func createSPC(t *testing.T, namespace, name, objects string, extra map[string]string, secretObjects []*secretsstorev1.SecretObject) {
	t.Helper()
	createSPCFor(t, "akeyless", namespace, name, objects, extra, secretObjects)
}

func createSPCFor(t *testing.T, provider, namespace, name, objects string, extra map[string]string, secretObjects []*secretsstorev1.SecretObject) {
	t.Helper()
	params := map[string]string{
		"akeylessGatewayURL":        emulator.URL,
		"akeylessAccessType":        "k8s",
		"akeylessAccessID":          k8sAccessID,
		"akeylessK8sAuthConfigName": k8sConfig,
		"akeylessTokenAudience":     audience,
		"objects":                   objects,
	}
	for k, v := range extra {
		if v == "" {
			delete(params, k)
		} else {
			params[k] = v
		}
	}
	spc := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: secretsstorev1.SecretProviderClassSpec{
			Provider: secretsstorev1.Provider(provider), Parameters: params, SecretObjects: secretObjects,
		},
	}
	if _, err := spcs.SecretsstoreV1().SecretProviderClasses(namespace).Create(testCtx(t), spc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPod creates a Pod bound to our node with one read-only CSI inline volume per entry of
// volumes (volume name → SecretProviderClass name).
func createPod(t *testing.T, namespace, name, serviceAccount string, volumes map[string]string) *corev1.Pod {
	t.Helper()
	ensureServiceAccount(t, namespace, serviceAccount)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                     nodeName,
			ServiceAccountName:           serviceAccount,
			AutomountServiceAccountToken: harness.Ptr(false),
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10",
			}},
		},
	}
	for vol, spc := range volumes {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: vol,
			VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver:           driverName,
				ReadOnly:         harness.Ptr(true),
				VolumeAttributes: map[string]string{"secretProviderClass": spc},
			}},
		})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts,
			corev1.VolumeMount{Name: vol, MountPath: "/mnt/" + vol, ReadOnly: true})
	}
	created, err := kube.CoreV1().Pods(namespace).Create(testCtx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// deletePod deletes the pod at once (there is no kubelet to confirm a graceful deletion).
func deletePod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	err := kube.CoreV1().Pods(pod.Namespace).Delete(testCtx(t), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: harness.Ptr[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// targetPath is kubelet's target path for a pod's CSI volume, under the test's work dir.
func targetPath(pod *corev1.Pod, volume string) string {
	return filepath.Join(workDir, "kubelet/pods", string(pod.UID), "volumes/kubernetes.io~csi", volume, "mount")
}

// csiDriverSpec is the part of the CSIDriver kubelet reads. It is decoded from the API server's
// JSON because serviceAccountTokenInSecrets (Kubernetes ≥ 1.35) is newer than the client-go
// types of every driver version's dependency graph.
type csiDriverSpec struct {
	PodInfoOnMount               *bool                    `json:"podInfoOnMount"`
	RequiresRepublish            *bool                    `json:"requiresRepublish"`
	TokenRequests                []storagev1.TokenRequest `json:"tokenRequests"`
	ServiceAccountTokenInSecrets *bool                    `json:"serviceAccountTokenInSecrets"`
}

func getCSIDriver(ctx context.Context, name string) (csiDriverSpec, error) {
	raw, err := kube.StorageV1().RESTClient().Get().Resource("csidrivers").Name(name).DoRaw(ctx)
	if err != nil {
		return csiDriverSpec{}, err
	}
	var obj struct {
		Spec csiDriverSpec `json:"spec"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return csiDriverSpec{}, fmt.Errorf("CSIDriver %s: %w", name, err)
	}
	return obj.Spec, nil
}

// kubeletCall is what kubelet (v1.35, pkg/volume/csi/csi_mounter.go) sends in NodePublishVolume.
type kubeletCall struct {
	volumeContext map[string]string
	secrets       map[string]string
	// tokens is the serviceAccount.tokens JSON kubelet minted ("" without tokenRequests).
	tokens string
}

// kubeletRequest builds what kubelet sends: the volume's attributes, the pod info (CSIDriver
// podInfoOnMount) over them, the nodePublishSecretRef Secret's data as secrets and, for each
// CSIDriver tokenRequests audience, a token for the pod's service account bound to the pod,
// minted with the TokenRequest API, over the volume context or, when the CSIDriver sets
// serviceAccountTokenInSecrets, over the secrets.
func kubeletRequest(ctx context.Context, pod *corev1.Pod, volume string) (kubeletCall, error) {
	var source *corev1.CSIVolumeSource
	for _, v := range pod.Spec.Volumes {
		if v.Name == volume {
			source = v.CSI
		}
	}
	if source == nil {
		return kubeletCall{}, fmt.Errorf("pod %s has no CSI volume %s", pod.Name, volume)
	}
	spec, err := getCSIDriver(ctx, source.Driver)
	if err != nil {
		return kubeletCall{}, err
	}
	call := kubeletCall{volumeContext: map[string]string{}, secrets: map[string]string{}}
	for k, v := range source.VolumeAttributes {
		call.volumeContext[k] = v
	}
	if ref := source.NodePublishSecretRef; ref != nil {
		secret, err := kube.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return kubeletCall{}, fmt.Errorf("fetching NodePublishSecretRef %s/%s failed: %w", pod.Namespace, ref.Name, err)
		}
		for k, v := range secret.Data {
			call.secrets[k] = string(v)
		}
	}
	if harness.Deref(spec.PodInfoOnMount, false) {
		call.volumeContext["csi.storage.k8s.io/pod.name"] = pod.Name
		call.volumeContext["csi.storage.k8s.io/pod.namespace"] = pod.Namespace
		call.volumeContext["csi.storage.k8s.io/pod.uid"] = string(pod.UID)
		call.volumeContext["csi.storage.k8s.io/serviceAccount.name"] = pod.Spec.ServiceAccountName
		call.volumeContext["csi.storage.k8s.io/ephemeral"] = "true"
	}
	if len(spec.TokenRequests) > 0 {
		tokens := map[string]authenticationv1.TokenRequestStatus{}
		for _, tr := range spec.TokenRequests {
			resp, err := kube.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName,
				&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
					Audiences:         []string{tr.Audience},
					ExpirationSeconds: tr.ExpirationSeconds,
					BoundObjectRef: &authenticationv1.BoundObjectReference{
						Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
					},
				}}, metav1.CreateOptions{})
			if err != nil {
				return kubeletCall{}, fmt.Errorf("TokenRequest for %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err)
			}
			tokens[tr.Audience] = resp.Status
		}
		b, err := json.Marshal(tokens)
		if err != nil {
			return kubeletCall{}, err
		}
		call.tokens = string(b)
		if harness.Deref(spec.ServiceAccountTokenInSecrets, false) {
			call.secrets[attrTokens] = call.tokens
		} else {
			call.volumeContext[attrTokens] = call.tokens
		}
	}
	return call, nil
}

// volumeID is kubelet's id for an inline volume: "csi-" + sha256(pod uid + volume name).
func volumeID(pod *corev1.Pod, volume string) string {
	sum := sha256.Sum256([]byte(string(pod.UID) + volume))
	return "csi-" + hex.EncodeToString(sum[:])
}

// publish calls NodePublishVolume as kubelet does (also for republish: same request, fresh
// tokens).
func publish(ctx context.Context, pod *corev1.Pod, volume string) error {
	_, err := publishCall(ctx, pod, volume)
	return err
}

// publishCall is publish, returning what kubelet sent.
func publishCall(ctx context.Context, pod *corev1.Pod, volume string) (kubeletCall, error) {
	call, err := kubeletRequest(ctx, pod, volume)
	if err != nil {
		return call, err
	}
	target := targetPath(pod, volume)
	// kubelet creates the volume directory; the driver creates and mounts `mount` in it.
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return call, err
	}
	_, err = node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId:   volumeID(pod, volume),
		TargetPath: target,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY},
		},
		Readonly:      true,
		VolumeContext: call.volumeContext,
		Secrets:       call.secrets,
	})
	return call, err
}

// republish is kubelet's periodic NodePublishVolume of a mounted volume, which it makes only
// for a CSIDriver with requiresRepublish (the driver's v1.6.0 manifest sets it).
func republish(t *testing.T, pod *corev1.Pod, volume string) error {
	t.Helper()
	spec, err := getCSIDriver(testCtx(t), driverName)
	if err != nil {
		return err
	}
	if !harness.Deref(spec.RequiresRepublish, false) {
		t.Fatalf("kubelet never republishes for this CSIDriver (driver %s manifest: no requiresRepublish)", driverVersion)
	}
	return publish(testCtx(t), pod, volume)
}

func mustPublish(t *testing.T, pod *corev1.Pod, volume string) string {
	t.Helper()
	if err := publish(testCtx(t), pod, volume); err != nil {
		t.Fatalf("NodePublishVolume %s/%s volume %s: %v", pod.Namespace, pod.Name, volume, err)
	}
	target := targetPath(pod, volume)
	t.Cleanup(func() { _ = unpublish(context.Background(), pod, volume) })
	return target
}

func unpublish(ctx context.Context, pod *corev1.Pod, volume string) error {
	_, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
		VolumeId: volumeID(pod, volume), TargetPath: targetPath(pod, volume),
	})
	return err
}

// isMountPoint reports whether path is a mount point (tmpfs mounted by the driver).
func isMountPoint(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == path {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// podStatus is the driver's SecretProviderClassPodStatus for a pod's SPC.
func podStatus(t *testing.T, pod *corev1.Pod, spc string) *secretsstorev1.SecretProviderClassPodStatus {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%s", pod.Name, pod.Namespace, spc)
	s, err := spcs.SecretsstoreV1().SecretProviderClassPodStatuses(pod.Namespace).Get(testCtx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("SecretProviderClassPodStatus %s: %v", name, err)
	}
	return s
}

func versions(s *secretsstorev1.SecretProviderClassPodStatus) map[string]string {
	out := map[string]string{}
	for _, o := range s.Status.Objects {
		out[o.ID] = o.Version
	}
	return out
}

// providerCalls counts the /auth calls the emulator served: one per provider Mount.
func providerCalls(t *testing.T) int {
	t.Helper()
	reqs, err := emulator.Requests()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range reqs {
		if r.Path == "/auth" {
			n++
		}
	}
	return n
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := harness.Poll(timeout, 250*time.Millisecond, what, cond); err != nil {
		t.Fatal(err)
	}
}

// uniqueName returns a DNS-label name unique within the run.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}
