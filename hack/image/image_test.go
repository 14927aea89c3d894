package main

// The image test: opens the OCI layout hack/image/build.sh wrote and checks what a cluster and
// a scanner rely on. Run by hack/image/build.sh (and so by .ci/run):
//
//	IMAGE_LAYOUT=DIR IMAGE_TAR=FILE CRANE=BIN DIST_PROFILE=dist DIST_FEATURES=... go test -v .
//
// Every input is required: a missing one fails the test rather than skipping a check.

import (
	"archive/tar"
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func env(t *testing.T, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set (run hack/image/build.sh)", key)
	}
	return v
}

// image is one platform's image, opened from the layout.
type image struct {
	platform string
	img      v1.Image
	manifest *v1.Manifest
	config   *v1.ConfigFile
	files    map[string]*tar.Header
	binary   string // extracted to a temp file
	sbom     []byte
}

func openLayout(t *testing.T) (v1.ImageIndex, *v1.IndexManifest, v1.Descriptor, []*image) {
	t.Helper()
	dir := env(t, "IMAGE_LAYOUT")
	outer, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("open layout %s: %v", dir, err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(om.Manifests) != 1 {
		t.Fatalf("index.json: want 1 entry (the image index), got %d", len(om.Manifests))
	}
	desc := om.Manifests[0]
	if desc.MediaType != types.OCIImageIndex {
		t.Fatalf("index.json entry: media type %s, want %s", desc.MediaType, types.OCIImageIndex)
	}
	idx, err := outer.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var images []*image
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("manifest %s has no platform", m.Digest)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, &image{platform: m.Platform.String(), img: img, manifest: mf, config: cfg})
	}
	return idx, im, desc, images
}

func TestIndex(t *testing.T) {
	idx, im, desc, images := openLayout(t)
	if im.MediaType != types.OCIImageIndex || im.SchemaVersion != 2 {
		t.Errorf("index: media type %s schema %d", im.MediaType, im.SchemaVersion)
	}
	var platforms []string
	for _, img := range images {
		platforms = append(platforms, img.platform)
	}
	if got := strings.Join(platforms, " "); got != "linux/amd64 linux/arm64/v8" {
		t.Errorf("platforms: %q, want \"linux/amd64 linux/arm64/v8\" in that order", got)
	}
	checkLabels(t, "index annotations", im.Annotations)
	if ref := desc.Annotations["org.opencontainers.image.ref.name"]; ref != im.Annotations["org.opencontainers.image.version"] {
		t.Errorf("index.json ref.name %q, want the version %q", ref, im.Annotations["org.opencontainers.image.version"])
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if digest != desc.Digest {
		t.Errorf("index digest %s, index.json says %s", digest, desc.Digest)
	}
	t.Logf("image index %s (%s), platforms %v", digest, im.Annotations["org.opencontainers.image.version"], platforms)
}

var wantLabels = []string{
	"org.opencontainers.image.title", "org.opencontainers.image.description",
	"org.opencontainers.image.version", "org.opencontainers.image.revision",
	"org.opencontainers.image.created", "org.opencontainers.image.licenses",
	"org.opencontainers.image.source",
}

func checkLabels(t *testing.T, what string, labels map[string]string) {
	t.Helper()
	for _, k := range wantLabels {
		if labels[k] == "" {
			t.Errorf("%s: %s missing", what, k)
		}
	}
	if _, err := time.Parse(time.RFC3339, labels["org.opencontainers.image.created"]); err != nil {
		t.Errorf("%s: created %q is not RFC 3339", what, labels["org.opencontainers.image.created"])
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(labels["org.opencontainers.image.revision"]) {
		t.Errorf("%s: revision %q is not a git commit", what, labels["org.opencontainers.image.revision"])
	}
}

// chartContainers reads the rendered chart (deploy/manifests) and returns each container's
// command and args: the image must run them.
func chartContainers(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, f := range []string{"akeyless-csi-provider.yaml", "akeyless-csi-provider-sync.yaml"} {
		text, err := os.ReadFile(filepath.Join("..", "..", "deploy", "manifests", f))
		if err != nil {
			t.Fatal(err)
		}
		// The rendered YAML is regular: `- name: X` then `image:`, `imagePullPolicy:`, then
		// `args:` and its `- item` lines (and `command:` if the chart ever sets one).
		re := regexp.MustCompile(`(?m)^\s+- name: (\S+)\n\s+image: .*\n(?:\s+imagePullPolicy: .*\n)?((?:\s+command:.*\n(?:\s+- .*\n)*)?)\s+args:\n((?:\s+- .*\n)+)`)
		for _, m := range re.FindAllStringSubmatch(string(text), -1) {
			if m[2] != "" {
				t.Errorf("%s: container %s sets a command; the image's entrypoint is the binary", f, m[1])
			}
			var args []string
			for _, line := range strings.Split(strings.TrimSpace(m[3]), "\n") {
				args = append(args, strings.Trim(strings.TrimPrefix(strings.TrimSpace(line), "- "), `"`))
			}
			out[m[1]] = args
		}
	}
	if len(out) < 2 {
		t.Fatalf("found %d containers in deploy/manifests, want the provider and sync: %v", len(out), out)
	}
	return out
}

func TestManifestsAndConfig(t *testing.T) {
	_, im, _, images := openLayout(t)
	// The chart's containers set no command (chartContainers fails otherwise): they rely on
	// the entrypoint being the binary, and pass the subcommand as the first argument.
	chartContainers(t)
	for i, img := range images {
		t.Run(img.platform, func(t *testing.T) {
			m := img.manifest
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
				t.Errorf("manifest %s, config %s: want OCI media types", m.MediaType, m.Config.MediaType)
			}
			if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("layers: want one %s, got %+v", types.OCILayer, m.Layers)
			}
			if m.Annotations[SBOMAnnotation] != SBOMPath {
				t.Errorf("manifest annotation %s = %q, want %q", SBOMAnnotation, m.Annotations[SBOMAnnotation], SBOMPath)
			}
			checkLabels(t, "manifest annotations", m.Annotations)
			c := img.config
			plat := im.Manifests[i].Platform
			if c.OS != plat.OS || c.Architecture != plat.Architecture || c.Variant != plat.Variant {
				t.Errorf("config platform %s/%s/%s, index says %s", c.OS, c.Architecture, c.Variant, plat)
			}
			if c.Config.User != "65532:65532" {
				t.Errorf("user %q, want 65532:65532", c.Config.User)
			}
			if fmt.Sprint(c.Config.Entrypoint) != "["+BinaryPath+"]" || fmt.Sprint(c.Config.Cmd) != "[serve]" {
				t.Errorf("entrypoint %q cmd %q, want [%s] [serve]", c.Config.Entrypoint, c.Config.Cmd, BinaryPath)
			}
			if len(c.Config.Env) != 0 {
				t.Errorf("env %q: the image sets none", c.Config.Env)
			}
			for _, port := range []string{"8080/tcp", "8095/tcp"} {
				if _, ok := c.Config.ExposedPorts[port]; !ok {
					t.Errorf("port %s (the chart's default) not exposed", port)
				}
			}
			checkLabels(t, "config labels", c.Config.Labels)
			for k, v := range c.Config.Labels {
				if m.Annotations[k] != v || im.Annotations[k] != v {
					t.Errorf("label %s=%q differs in the manifest (%q) or index (%q)", k, v, m.Annotations[k], im.Annotations[k])
				}
			}
			created := c.Config.Labels["org.opencontainers.image.created"]
			if c.Created.UTC().Format(time.RFC3339) != created {
				t.Errorf("config created %s, label %s", c.Created, created)
			}
			if len(c.History) != 1 || !c.History[0].Created.Equal(c.Created.Time) {
				t.Errorf("history: want one entry at %s: %+v", created, c.History)
			}
			if c.RootFS.Type != "layers" || len(c.RootFS.DiffIDs) != 1 {
				t.Errorf("rootfs %+v", c.RootFS)
			}
		})
	}
}

// readLayer lists the layer's entries and extracts the binary and the SBOM.
func readLayer(t *testing.T, img *image) {
	t.Helper()
	layers, err := img.img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	img.files = map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		img.files["/"+strings.TrimSuffix(h.Name, "/")] = h
		switch "/" + h.Name {
		case BinaryPath:
			img.binary = filepath.Join(t.TempDir(), "akeyless-csi-provider")
			f, err := os.OpenFile(img.binary, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case SBOMPath:
			if img.sbom, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestLayerContents(t *testing.T) {
	_, _, _, images := openLayout(t)
	for _, img := range images {
		t.Run(img.platform, func(t *testing.T) {
			readLayer(t, img)
			var names []string
			for n, h := range img.files {
				names = append(names, n)
				if h.Uid != 0 || h.Gid != 0 {
					t.Errorf("%s owned by %d:%d, want 0:0", n, h.Uid, h.Gid)
				}
				if h.Mode&0o222 != 0 {
					t.Errorf("%s is writable (mode %o)", n, h.Mode)
				}
				if !h.ModTime.Equal(img.config.Created.Time) {
					t.Errorf("%s mtime %s, want the created time %s", n, h.ModTime, img.config.Created)
				}
			}
			sort.Strings(names)
			// No shell, no package manager, no libc, no CA files: exactly these.
			want := []string{BinaryPath, "/sbom", SBOMPath}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("layer holds %v, want exactly %v", names, want)
			}
			if h := img.files[BinaryPath]; h == nil || h.Mode != 0o555 {
				t.Errorf("binary entry %+v, want mode 0555", h)
			}
		})
	}
}

// run runs the extracted binary of img (under qemu-user for a foreign architecture) with an
// empty environment, as in the image.
func run(t *testing.T, img *image, args ...string) string {
	t.Helper()
	arch := img.config.Architecture
	native := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH] == arch
	var cmd *exec.Cmd
	if native {
		cmd = exec.Command(img.binary, args...)
	} else {
		qemu := map[string]string{"amd64": "qemu-x86_64", "arm64": "qemu-aarch64"}[arch]
		path, err := exec.LookPath(qemu)
		if err != nil {
			t.Fatalf("%s is needed to run the %s binary (Debian: apt-get install qemu-user)", qemu, arch)
		}
		cmd = exec.Command(path, append([]string{img.binary}, args...)...)
	}
	cmd.Env = []string{}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", img.platform, args, err, out.String())
	}
	return out.String()
}

func TestBinaries(t *testing.T) {
	_, _, _, images := openLayout(t)
	profile, features := env(t, "DIST_PROFILE"), os.Getenv("DIST_FEATURES")
	containers := chartContainers(t)
	for _, img := range images {
		t.Run(img.platform, func(t *testing.T) {
			readLayer(t, img)
			f, err := elf.Open(img.binary)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[img.config.Architecture]
			if f.Machine != wantMachine {
				t.Errorf("ELF machine %s, want %s", f.Machine, wantMachine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("the binary asks for a program interpreter: not static")
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) != 0 {
				t.Errorf("the binary needs shared libraries %v", libs)
			}
			out := run(t, img, "version", "--verbose")
			t.Logf("%s: version --verbose:\n%s", img.platform, out)
			triple := map[string]string{"amd64": "x86_64-unknown-linux-musl", "arm64": "aarch64-unknown-linux-musl"}[img.config.Architecture]
			wantFeatures := "(none)"
			if features != "" {
				wantFeatures = "" // checked below: every --features name is listed
			}
			for _, want := range []string{
				"akeyless-csi-provider " + img.config.Config.Labels["org.opencontainers.image.version"] + "\n",
				"git commit: " + img.config.Config.Labels["org.opencontainers.image.revision"] + "\n",
				"target: " + triple + "\n",
				"profile: " + profile + "\n",
				"static (crt-static): true\n",
				"debug-assertions: false\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("version --verbose lacks %q", want)
				}
			}
			if wantFeatures != "" && !strings.Contains(out, "features: "+wantFeatures+"\n") {
				t.Errorf("version --verbose: want features %s", wantFeatures)
			}
			for _, name := range featureNames(features) {
				if !regexp.MustCompile(`(?m)^features: .*\b` + regexp.QuoteMeta(name) + `\b`).MatchString(out) {
					t.Errorf("version --verbose: feature %s missing", name)
				}
			}
			// Every subcommand the chart runs exists in this binary.
			for container, args := range containers {
				if help := run(t, img, args[0], "--help"); !strings.Contains(help, "Usage:") {
					t.Errorf("chart container %s runs %q, which the binary doesn't know:\n%s", container, args[0], help)
				}
			}
		})
	}
}

func featureNames(args string) []string {
	var names []string
	fields := strings.Fields(args)
	for i, f := range fields {
		if f == "--features" && i+1 < len(fields) {
			names = append(names, strings.Split(fields[i+1], ",")...)
		} else if v, ok := strings.CutPrefix(f, "--features="); ok {
			names = append(names, strings.Split(v, ",")...)
		}
	}
	return names
}

// auditablePackages reads the dependency list `cargo auditable` embedded in the binary.
func auditablePackages(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".dep-v0")
	if sec == nil {
		t.Fatalf("no .dep-v0 section: the binary was not built with cargo auditable")
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Packages []map[string]any `json:"packages"`
	}
	if err := json.NewDecoder(zr).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info.Packages
}

func TestSBOM(t *testing.T) {
	_, _, _, images := openLayout(t)
	for _, img := range images {
		t.Run(img.platform, func(t *testing.T) {
			readLayer(t, img)
			var bom struct {
				BOMFormat   string `json:"bomFormat"`
				SpecVersion string `json:"specVersion"`
				Metadata    struct {
					Component struct {
						Name    string `json:"name"`
						Version string `json:"version"`
					} `json:"component"`
				} `json:"metadata"`
				Components []struct {
					Name    string `json:"name"`
					Version string `json:"version"`
					PURL    string `json:"purl"`
				} `json:"components"`
			}
			if err := json.Unmarshal(img.sbom, &bom); err != nil {
				t.Fatalf("SBOM is not JSON: %v", err)
			}
			if bom.BOMFormat != "CycloneDX" || bom.SpecVersion == "" {
				t.Errorf("SBOM format %q spec %q", bom.BOMFormat, bom.SpecVersion)
			}
			if bom.Metadata.Component.Name != "akeyless-csi-provider" ||
				bom.Metadata.Component.Version != img.config.Config.Labels["org.opencontainers.image.version"] {
				t.Errorf("SBOM describes %s %s", bom.Metadata.Component.Name, bom.Metadata.Component.Version)
			}
			inSBOM := map[string]bool{}
			for _, c := range bom.Components {
				inSBOM[c.Name+"@"+c.Version] = true
				if !strings.HasPrefix(c.PURL, "pkg:cargo/"+c.Name+"@"+c.Version) {
					t.Errorf("component %s %s: purl %q", c.Name, c.Version, c.PURL)
				}
			}
			// The SBOM lists exactly what cargo auditable embedded (less the root package).
			pkgs := auditablePackages(t, img.binary)
			embedded := 0
			for _, p := range pkgs {
				key := fmt.Sprintf("%v@%v", p["name"], p["version"])
				if p["root"] == true {
					continue
				}
				embedded++
				if !inSBOM[key] {
					t.Errorf("%s is in the binary's dependency list but not in the SBOM", key)
				}
			}
			if len(bom.Components) != embedded {
				t.Errorf("SBOM has %d components, the binary embeds %d packages", len(bom.Components), embedded)
			}
			for _, dep := range []string{"tokio", "rustls", "ring", "tonic", "kube-client"} {
				found := false
				for k := range inSBOM {
					found = found || strings.HasPrefix(k, dep+"@")
				}
				if !found {
					t.Errorf("SBOM lacks %s", dep)
				}
			}
			t.Logf("%s: SBOM %s %s, %d components; the binary embeds %d packages", img.platform,
				bom.BOMFormat, bom.SpecVersion, len(bom.Components), len(pkgs))
		})
	}
}

// TestReproducible rebuilds the index from the files and labels inside it: the digest must be
// the same, so the image depends on nothing but its inputs.
func TestReproducible(t *testing.T) {
	idx, _, _, images := openLayout(t)
	want, _ := idx.Digest()
	spec := Spec{Binaries: map[string]string{}, SBOMs: map[string]string{}}
	for _, img := range images {
		readLayer(t, img)
		plat := img.config.OS + "/" + img.config.Architecture
		spec.Binaries[plat] = img.binary
		sbom := filepath.Join(t.TempDir(), "sbom.json")
		if err := os.WriteFile(sbom, img.sbom, 0o644); err != nil {
			t.Fatal(err)
		}
		spec.SBOMs[plat] = sbom
		labels := img.config.Config.Labels
		spec.Version, spec.Revision = labels["org.opencontainers.image.version"], labels["org.opencontainers.image.revision"]
		spec.Created = img.config.Created.Time
	}
	got, err := spec.WriteLayout(filepath.Join(t.TempDir(), "again"))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("rebuilt from the same inputs: %s, want %s: the build is not reproducible", got, want)
	}
}

// TestTarball checks the layout tarball holds the same layout.
func TestTarball(t *testing.T) {
	dir := env(t, "IMAGE_LAYOUT")
	f, err := os.Open(env(t, "IMAGE_TAR"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, _ := io.ReadAll(tr)
		onDisk, err := os.ReadFile(filepath.Join(dir, h.Name))
		if err != nil || !bytes.Equal(data, onDisk) {
			t.Errorf("tarball entry %s differs from the layout (%v)", h.Name, err)
		}
		seen++
	}
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if seen != files || seen < 7 { // oci-layout, index.json, index, 2×(manifest, config, layer)
		t.Errorf("tarball has %d files, layout %d", seen, files)
	}
}

// TestPush pushes the layout with the README's command (`crane push DIR REF`) to a real OCI
// registry (go-containerregistry's, on loopback) and reads it back by tag.
func TestPush(t *testing.T) {
	idx, _, _, _ := openLayout(t)
	want, _ := idx.Digest()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	defer srv.Close()
	ref := l.Addr().String() + "/platform/akeyless-csi-provider:0.1.0"
	cmd := exec.Command(env(t, "CRANE"), "push", env(t, "IMAGE_LAYOUT"), ref)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crane push: %v\n%s", err, stderr.String())
	}
	pushed := strings.TrimSpace(string(out))
	if !strings.HasSuffix(pushed, "@"+want.String()) {
		t.Errorf("crane push printed %q, want the index digest %s", pushed, want)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("registry serves %s for the tag, want %s", d, want)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := remote.Image(r, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatalf("pull linux/%s: %v", arch, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil || cfg.Architecture != arch {
			t.Errorf("linux/%s resolves to %+v (%v)", arch, cfg, err)
		}
	}
	t.Logf("pushed %s", pushed)
}
