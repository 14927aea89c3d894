package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// Emulator is the in-repo Akeyless API emulator (the `akeyless-emulator` binary of
// crates/akeyless-emulator), driven through its /__emulator admin routes.
type Emulator struct {
	URL  string
	Proc *Proc
	http *http.Client
}

var emulatorURLLine = regexp.MustCompile(`Akeyless emulator listening on (http://\S+)`)

// StartEmulator runs the emulator on a free loopback port and waits until it answers.
func StartEmulator(emulatorBin, logDir string) (*Emulator, error) {
	p, err := Start("emulator", logDir, emulatorBin,
		[]string{"--listen", "127.0.0.1:0"}, nil)
	if err != nil {
		return nil, err
	}
	url, err := p.WaitForLine(emulatorURLLine, 30*time.Second)
	if err != nil {
		p.Stop()
		return nil, err
	}
	e := &Emulator{URL: url, Proc: p, http: &http.Client{Timeout: 15 * time.Second}}
	if err := e.admin("GET", "/health", nil, nil); err != nil {
		p.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Emulator) admin(method, route string, body, out any) error {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+"/__emulator"+route, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s: %w", route, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		// Admin errors never quote secrets (the emulator redacts them).
		return fmt.Errorf("emulator %s: HTTP %d: %s", route, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Seed loads auth methods, k8s auth configs, grants and items (the emulator's Seed format).
func (e *Emulator) Seed(seed any) error { return e.admin("POST", "/seed", seed, nil) }

// PutStaticSecret appends a version to a static secret and returns its number.
func (e *Emulator) PutStaticSecret(name, value string) (int, error) {
	var out struct {
		Version int `json:"version"`
	}
	err := e.admin("POST", "/static-secret", map[string]string{"name": name, "value": value}, &out)
	return out.Version, err
}

// IssueSAToken mints a service-account token signed by the emulator (self-contained k8s auth).
func (e *Emulator) IssueSAToken(namespace, serviceAccount, podName, podUID, audience string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := e.admin("POST", "/issue-sa-token", map[string]any{
		"namespace": namespace, "service_account": serviceAccount,
		"pod_name": podName, "pod_uid": podUID, "audience": audience,
	}, &out)
	return out.Token, err
}

// Identity is who a recorded request authenticated as.
type Identity struct {
	AccessID       string `json:"access_id"`
	AccessType     string `json:"access_type"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"service_account"`
	PodUID         string `json:"pod_uid"`
}

// Request is one entry of the emulator's request log.
type Request struct {
	Path     string    `json:"path"`
	Status   int       `json:"status"`
	Identity *Identity `json:"identity"`
	Items    []string  `json:"items"`
}

// Requests returns the request log.
func (e *Emulator) Requests() ([]Request, error) {
	var out []Request
	err := e.admin("GET", "/requests", nil, &out)
	return out, err
}

// ResetRequests empties the request log.
func (e *Emulator) ResetRequests() error { return e.admin("POST", "/reset-requests", nil, nil) }

// Stop stops the emulator process.
func (e *Emulator) Stop() { e.Proc.Stop() }

// Provider is our provider binary serving the driver protocol on <Dir>/akeyless.sock.
type Provider struct {
	Dir    string
	Socket string
	Proc   *Proc
}

// StartProvider runs `akeyless-csi-provider serve` on dir/akeyless.sock against akeylessURL and
// waits until its Version RPC answers.
func StartProvider(providerBin, logDir, dir, akeylessURL string, extraArgs ...string) (*Provider, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "akeyless.sock")
	args := append([]string{"serve",
		"--endpoint", socket,
		"--akeyless-url", akeylessURL,
		"--health-addr", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0",
		"--log-format", "text",
	}, extraArgs...)
	p, err := Start("provider", logDir, providerBin, args, nil)
	if err != nil {
		return nil, err
	}
	err = Poll(30*time.Second, 100*time.Millisecond, "the provider's Version RPC", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%w: provider exited:\n%s", ErrStop, p.Tail(20))
		}
		if _, err := os.Stat(socket); err != nil {
			return false, nil
		}
		return versionOK(socket) == nil, nil
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	return &Provider{Dir: dir, Socket: socket, Proc: p}, nil
}

func versionOK(socket string) error {
	conn, err := DialUnix(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = v1alpha1.NewCSIDriverProviderClient(conn).Version(ctx, &v1alpha1.VersionRequest{Version: "v1alpha1"})
	return err
}

// Stop stops the provider process.
func (p *Provider) Stop() { p.Proc.Stop() }
