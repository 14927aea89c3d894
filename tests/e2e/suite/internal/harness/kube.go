package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	spcclient "sigs.k8s.io/secrets-store-csi-driver/pkg/client/clientset/versioned"
)

// Kubectl runs kubectl (KUBECONFIG from the environment), bounded to 90 s.
func Kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", append([]string{"--request-timeout=60s"}, args...)...).CombinedOutput()
	return string(out), err
}

// ServiceAccountToken mints a 2-hour token for namespace/name with the TokenRequest API, for
// the given audiences (none: the API server's default).
func ServiceAccountToken(ctx context.Context, kube kubernetes.Interface, namespace, name string, audiences ...string) (string, error) {
	spec := authenticationv1.TokenRequestSpec{ExpirationSeconds: Ptr[int64](7200), Audiences: audiences}
	tr, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// WriteTokenKubeconfig writes a kubeconfig that authenticates with a bearer token.
func WriteTokenKubeconfig(path, server, caFile, token string) error {
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: sa
  user: {token: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: sa}
current-context: e2e
`, server, caFile, token)
	return os.WriteFile(path, []byte(content), 0o600)
}

// TokenReviewer creates (or reuses) the ServiceAccount kube-system/name bound to
// system:auth-delegator, as a gateway's token reviewer is, and returns a token of it.
func TokenReviewer(ctx context.Context, kube kubernetes.Interface, name string) (string, error) {
	const ns = "kube-system"
	_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return ServiceAccountToken(ctx, kube, ns, name)
}

// Clients builds the Kubernetes and SecretProviderClass clients from a kubeconfig file.
func Clients(kubeconfig string) (*kubernetes.Clientset, *spcclient.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	spcs, err := spcclient.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return kube, spcs, nil
}

// Apply server-side-applies each manifest file, then waits for the named CRDs to be
// established.
func Apply(files []string, crds ...string) error {
	for _, f := range files {
		if out, err := Kubectl("apply", "--server-side", "--force-conflicts", "-f", f); err != nil {
			return fmt.Errorf("kubectl apply %s: %w\n%s", f, err, out)
		}
	}
	if len(crds) == 0 {
		return nil
	}
	args := []string{"wait", "--for=condition=established", "--timeout=60s"}
	for _, c := range crds {
		args = append(args, "crd/"+c)
	}
	if out, err := Kubectl(args...); err != nil {
		return fmt.Errorf("CRDs not established: %w\n%s", err, out)
	}
	return nil
}
