package driver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/version"
	secretsstorev1alpha1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1alpha1"

	"github.com/akeyless-csi-provider/tests/e2e/suite/internal/harness"
)

const attrTokens = "csi.storage.k8s.io/serviceAccount.tokens"

// driverPaths is how a driver version hands a mount to the provider, as read from its source
// (pkg/secrets-store/nodeserver.go; up to v1.5 also pkg/rotation/reconciler.go and
// pkg/k8s/token.go). The tests below assert the path of the version under test.
//
//   - Rotation. v1.6.0 remounts on kubelet's republish (its CSIDriver sets requiresRepublish)
//     once the mount is older than --rotation-poll-interval, with NodePublishVolume's attributes
//     and no current_object_version. Up to v1.5, a NodePublishVolume on a mounted path returns
//     at once; the driver's own rotation reconciler remounts every --rotation-poll-interval, with
//     attributes rebuilt from the SPC and the pod (no secretProviderClass, no ephemeral, no pod
//     volumeAttributes), tokens it mints itself, secrets `{}` or the labelled nodePublishSecretRef
//     Secret's data, and the SPCPS object versions as current_object_version.
//   - Tokens. kubelet sends them in the volume context, or in the secrets when the CSIDriver sets
//     serviceAccountTokenInSecrets (Kubernetes ≥ 1.35). v1.6.0 takes the secrets copy first and
//     puts it in attributes. Up to v1.5 the driver reads only the volume context (after the SPC
//     parameters) and, when no tokens are there, mints its own with the TokenRequest API.
//   - Unchanged in all: secrets is the JSON of the request's secrets (`null` without any),
//     permission is "420", the SPC CRDs serve v1 and v1alpha1.
type driverPaths struct {
	// reconcilerRotation: rotation comes from the driver's reconciler, not kubelet's republish.
	reconcilerRotation bool
	// mintsTokens: the driver mints tokens when the volume context and SPC have none.
	mintsTokens bool
	// tokensFromSecrets: the driver puts tokens found in secrets in the attributes.
	tokensFromSecrets bool
}

func (p driverPaths) String() string {
	if p.reconcilerRotation {
		return "rotation by the driver's reconciler; driver-minted tokens when the volume context has none"
	}
	return "rotation on kubelet's republish; tokens from secrets first"
}

// pathsOf maps a driver version to its paths: v1.6.0 removed the rotation reconciler and the
// token client (kubernetes-sigs/secrets-store-csi-driver#1622) and added the secrets-first
// token lookup.
func pathsOf(v string) (driverPaths, error) {
	parsed, err := version.ParseSemantic(v)
	if err != nil {
		return driverPaths{}, fmt.Errorf("E2E_DRIVER_VERSION %q: %w", v, err)
	}
	old := parsed.LessThan(version.MustParseSemantic("v1.6.0"))
	return driverPaths{reconcilerRotation: old, mintsTokens: old, tokensFromSecrets: !old}, nil
}

// mountCall is one Mount request the driver sent through the observing proxy, decoded.
type mountCall struct {
	attributes map[string]string
	secretsRaw string
	secrets    map[string]string
	permission string
	current    map[string]string
}

// observedMounts returns the Mount requests the driver sent for pod, oldest first.
func observedMounts(t *testing.T, pod *corev1.Pod) []mountCall {
	t.Helper()
	var out []mountCall
	for _, r := range observed.Requests() {
		c := mountCall{secretsRaw: r.GetSecrets(), permission: r.GetPermission(), current: map[string]string{}}
		if err := json.Unmarshal([]byte(r.GetAttributes()), &c.attributes); err != nil {
			t.Fatalf("the driver sent attributes that are not a JSON object of strings: %v", err)
		}
		if c.attributes["csi.storage.k8s.io/pod.uid"] != string(pod.UID) {
			continue
		}
		if err := json.Unmarshal([]byte(r.GetSecrets()), &c.secrets); err != nil {
			t.Fatalf("the driver sent secrets that are not JSON: %v", err)
		}
		for _, v := range r.GetCurrentObjectVersion() {
			c.current[v.GetId()] = v.GetVersion()
		}
		out = append(out, c)
	}
	return out
}

func lastMount(t *testing.T, pod *corev1.Pod) mountCall {
	t.Helper()
	calls := observedMounts(t, pod)
	if len(calls) == 0 {
		t.Fatalf("the driver sent no Mount for pod %s", pod.Name)
	}
	return calls[len(calls)-1]
}

// tokenClaims are the claims of a Kubernetes service-account token (read, not verified: the
// tests only tell tokens apart; Akeyless verifies them with a TokenReview).
type tokenClaims struct {
	Namespace, ServiceAccount, PodUID string
}

// claimsOf decodes every token of a serviceAccount.tokens JSON value, by audience.
func claimsOf(t *testing.T, tokensJSON string) map[string]tokenClaims {
	t.Helper()
	var tokens map[string]authenticationv1.TokenRequestStatus
	if err := json.Unmarshal([]byte(tokensJSON), &tokens); err != nil {
		t.Fatalf("tokens are not kubelet's JSON: %v", err)
	}
	out := map[string]tokenClaims{}
	for aud, tr := range tokens {
		parts := strings.Split(tr.Token, ".")
		if len(parts) != 3 {
			t.Fatalf("the token for audience %s is not a JWT", aud)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatalf("the token for audience %s: %v", aud, err)
		}
		var c struct {
			K8s struct {
				Namespace string `json:"namespace"`
				Pod       struct {
					UID string `json:"uid"`
				} `json:"pod"`
				ServiceAccount struct {
					Name string `json:"name"`
				} `json:"serviceaccount"`
			} `json:"kubernetes.io"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("the token for audience %s: %v", aud, err)
		}
		out[aud] = tokenClaims{Namespace: c.K8s.Namespace, ServiceAccount: c.K8s.ServiceAccount.Name, PodUID: c.K8s.Pod.UID}
	}
	return out
}

// assertBoundToPod checks that tokensJSON holds a token for each CSIDriver audience, each for
// the pod's service account and bound to the pod.
func assertBoundToPod(t *testing.T, what, tokensJSON string, pod *corev1.Pod) {
	t.Helper()
	claims := claimsOf(t, tokensJSON)
	want := tokenClaims{Namespace: pod.Namespace, ServiceAccount: pod.Spec.ServiceAccountName, PodUID: string(pod.UID)}
	for _, aud := range []string{audience, otherAud} {
		if got, ok := claims[aud]; !ok || got != want {
			t.Errorf("%s: token for audience %s has claims %+v (present: %v), want %+v", what, aud, got, ok, want)
		}
	}
}

// authenticatedAs reports the identities of the emulator's successful /auth calls for podUID.
func authenticatedAs(t *testing.T, podUID types.UID) []string {
	t.Helper()
	reqs, err := emulator.Requests()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range reqs {
		if r.Path == "/auth" && r.Status == 200 && r.Identity != nil && r.Identity.PodUID == string(podUID) {
			out = append(out, r.Identity.Namespace+"/"+r.Identity.ServiceAccount)
		}
	}
	return out
}

// setTokensInSecrets sets the CSIDriver's serviceAccountTokenInSecrets (Kubernetes ≥ 1.35,
// feature CSIServiceAccountTokenSecrets), so kubelet sends the tokens in the secrets, and
// unsets it when the test ends.
func setTokensInSecrets(t *testing.T) {
	t.Helper()
	patch := func(v string) error {
		_, err := kube.StorageV1().CSIDrivers().Patch(testCtx(t), driverName, types.MergePatchType,
			[]byte(`{"spec":{"serviceAccountTokenInSecrets":`+v+`}}`), metav1.PatchOptions{})
		return err
	}
	if err := patch("true"); err != nil {
		t.Fatalf("set serviceAccountTokenInSecrets: %v", err)
	}
	t.Cleanup(func() {
		if err := patch("null"); err != nil {
			t.Errorf("unset serviceAccountTokenInSecrets: %v", err)
		}
	})
	spec, err := getCSIDriver(testCtx(t), driverName)
	if err != nil {
		t.Fatal(err)
	}
	if !harness.Deref(spec.ServiceAccountTokenInSecrets, false) {
		t.Fatal("the API server dropped serviceAccountTokenInSecrets (feature CSIServiceAccountTokenSecrets off?)")
	}
}

// mintTokensJSON mints a token of namespace/serviceAccount for the audience and lays it out as
// kubelet's serviceAccount.tokens value: what a tenant could put under that key.
func mintTokensJSON(t *testing.T, namespace, serviceAccount string) string {
	t.Helper()
	ensureServiceAccount(t, namespace, serviceAccount)
	tok, err := harness.ServiceAccountToken(testCtx(t), kube, namespace, serviceAccount, audience)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]authenticationv1.TokenRequestStatus{audience: {Token: tok}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Where kubelet puts the pod's tokens, what each driver version forwards, and which copy the
// provider authenticates with (src/request.rs: the `secrets` copy wins).
func TestServiceAccountTokenPaths(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)

	// The default: kubelet's tokens in the volume context, which every version forwards as is.
	t.Run("volume context", func(t *testing.T) {
		spc := uniqueName("tok-vc")
		createSPCFor(t, observedProvider, ns, spc, basicObjects, nil, nil)
		pod := createPod(t, ns, uniqueName("tok-vc"), "app", map[string]string{"secrets": spc})
		call, err := publishCall(testCtx(t), pod, "secrets")
		if err != nil {
			t.Fatalf("NodePublishVolume: %v", err)
		}
		t.Cleanup(func() { _ = unpublish(testCtx(t), pod, "secrets") })
		if call.volumeContext[attrTokens] == "" || call.secrets[attrTokens] != "" {
			t.Fatal("kubelet did not put the tokens in the volume context only")
		}
		m := lastMount(t, pod)
		if m.attributes[attrTokens] != call.tokens {
			t.Error("the attributes do not carry kubelet's tokens")
		}
		if m.secretsRaw != "null" {
			t.Errorf("secrets = %q, want null (no nodePublishSecretRef)", m.secretsRaw)
		}
		if m.permission != "420" || m.attributes["secretProviderClass"] != spc || len(m.current) != 0 {
			t.Errorf("permission %q, secretProviderClass %q, current versions %v; want 420, %s, none",
				m.permission, m.attributes["secretProviderClass"], m.current, spc)
		}
		if got := readFile(t, filepath.Join(targetPath(pod, "secrets"), "foo")); got != "foo-value" {
			t.Errorf("foo = %q", got)
		}
	})

	// serviceAccountTokenInSecrets: kubelet's tokens in the secrets only. v1.6.0 copies them into
	// the attributes; up to v1.5 the driver, finding none in the volume context, mints its own.
	t.Run("secrets", func(t *testing.T) {
		setTokensInSecrets(t)
		spc := uniqueName("tok-sec")
		createSPCFor(t, observedProvider, ns, spc, basicObjects, nil, nil)
		pod := createPod(t, ns, uniqueName("tok-sec"), "app", map[string]string{"secrets": spc})
		call, err := publishCall(testCtx(t), pod, "secrets")
		if err != nil {
			t.Fatalf("NodePublishVolume: %v", err)
		}
		t.Cleanup(func() { _ = unpublish(testCtx(t), pod, "secrets") })
		if call.secrets[attrTokens] == "" || call.volumeContext[attrTokens] != "" {
			t.Fatal("kubelet did not put the tokens in the secrets only")
		}
		m := lastMount(t, pod)
		if m.secrets[attrTokens] != call.tokens {
			t.Error("the secrets do not carry kubelet's tokens")
		}
		inAttributes := m.attributes[attrTokens]
		switch {
		case paths.tokensFromSecrets:
			if inAttributes != call.tokens {
				t.Errorf("driver %s should copy kubelet's tokens from the secrets into the attributes", driverVersion)
			}
		case paths.mintsTokens:
			if inAttributes == "" || inAttributes == call.tokens {
				t.Errorf("driver %s should send tokens it minted in the attributes (present: %v)", driverVersion, inAttributes != "")
			} else {
				assertBoundToPod(t, "the driver-minted tokens", inAttributes, pod)
			}
		}
		if got := readFile(t, filepath.Join(targetPath(pod, "secrets"), "foo")); got != "foo-value" {
			t.Errorf("foo = %q", got)
		}
	})

	// serviceAccountTokenInSecrets, and an SPC parameter under the tokens key holding another
	// service account's token. Up to v1.5 that value reaches the provider in the attributes (the
	// driver mints nothing when the key is set); the provider must use kubelet's copy from the
	// secrets. `intruder` is not bound in the Akeyless auth method: using its token would fail.
	t.Run("secrets over a tenant's SPC parameter", func(t *testing.T) {
		setTokensInSecrets(t)
		forged := mintTokensJSON(t, ns, "intruder")
		spc := uniqueName("tok-spc")
		createSPCFor(t, observedProvider, ns, spc, basicObjects, map[string]string{attrTokens: forged}, nil)
		pod := createPod(t, ns, uniqueName("tok-spc"), "app", map[string]string{"secrets": spc})
		call, err := publishCall(testCtx(t), pod, "secrets")
		if err != nil {
			t.Fatalf("NodePublishVolume: %v (the provider must authenticate with kubelet's tokens from the secrets)", err)
		}
		t.Cleanup(func() { _ = unpublish(testCtx(t), pod, "secrets") })
		m := lastMount(t, pod)
		if m.secrets[attrTokens] != call.tokens {
			t.Error("the secrets do not carry kubelet's tokens")
		}
		want, which := call.tokens, "kubelet's tokens (v1.6.0 copies them over the SPC parameter)"
		if !paths.tokensFromSecrets {
			want, which = forged, "the SPC parameter's tokens (drivers up to v1.5 keep them)"
		}
		if m.attributes[attrTokens] != want {
			t.Errorf("driver %s: the attributes should carry %s", driverVersion, which)
		}
		if got := readFile(t, filepath.Join(targetPath(pod, "secrets"), "foo")); got != "foo-value" {
			t.Errorf("foo = %q", got)
		}
		if ids := authenticatedAs(t, pod.UID); len(ids) == 0 || ids[len(ids)-1] != ns+"/app" {
			t.Errorf("authenticated as %v for the pod, want %s/app", ids, ns)
		}
	})

	// Why the `secrets` copy is always kubelet's: a nodePublishSecretRef Secret cannot hold the
	// tokens key (a Secret's keys may not contain "/"), so only kubelet puts it there.
	t.Run("no Secret can hold the tokens key", func(t *testing.T) {
		_, err := kube.CoreV1().Secrets(ns).Create(testCtx(t), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("tok-ref")},
			StringData: map[string]string{attrTokens: mintTokensJSON(t, ns, "intruder")},
		}, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), attrTokens) {
			t.Fatalf("creating a Secret with key %s: err = %v, want Invalid", attrTokens, err)
		}
	})
}

// Every version serves the SPC CRD at v1 and the deprecated v1alpha1: an SPC written through
// v1alpha1 mounts.
func TestV1alpha1SecretProviderClass(t *testing.T) {
	ns := nsA()
	ensureNamespace(t, ns)
	name := uniqueName("alpha")
	spc := &secretsstorev1alpha1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: secretsstorev1alpha1.SecretProviderClassSpec{
			Provider: "akeyless",
			Parameters: map[string]string{
				"akeylessGatewayURL":        emulator.URL,
				"akeylessAccessType":        "k8s",
				"akeylessAccessID":          k8sAccessID,
				"akeylessK8sAuthConfigName": k8sConfig,
				"akeylessTokenAudience":     audience,
				"objects":                   basicObjects,
			},
		},
	}
	if _, err := spcs.SecretsstoreV1alpha1().SecretProviderClasses(ns).Create(testCtx(t), spc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a v1alpha1 SecretProviderClass: %v", err)
	}
	pod := createPod(t, ns, uniqueName("alpha"), "app", map[string]string{"secrets": name})
	target := mustPublish(t, pod, "secrets")
	if got := readFile(t, filepath.Join(target, "foo")); got != "foo-value" {
		t.Errorf("foo = %q", got)
	}
}
