// Command build-image assembles the multi-arch OCI image of akeyless-csi-provider from the two
// static binaries and their SBOMs, without a container engine, using go-containerregistry.
//
// The result is reproducible: every timestamp is --created (the commit time), tar entries and
// index entries have a fixed order, owners are 0:0, and layers are gzip-compressed by Go's
// compress/gzip with a fixed level and an empty gzip header. The same inputs (and the same Go
// and go-containerregistry versions, pinned in go.mod) give the same digests.
//
// Each image holds exactly two files and their directory, owned by root and read-only:
//
//	/akeyless-csi-provider                   the static binary (mode 0555)
//	/sbom/akeyless-csi-provider.cdx.json     its CycloneDX SBOM (mode 0444)
//
// No shell, no package manager, no libc, and no CA certificates: the binary carries the Mozilla
// roots (webpki-roots) and reads extra CAs from --ca-bundle.
//
// usage: go run . -out DIR -tar FILE -version V -revision SHA -created UNIX \
//
//	-binary linux/amd64=BIN -sbom linux/amd64=SBOM -binary linux/arm64=BIN -sbom linux/arm64=SBOM
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// BinaryPath is the entrypoint; the Helm chart passes only args (`serve …`, `sync …`).
	BinaryPath = "/akeyless-csi-provider"
	// SBOMPath is where each image carries the CycloneDX SBOM of its binary.
	SBOMPath = "/sbom/akeyless-csi-provider.cdx.json"
	// SBOMAnnotation names SBOMPath on each image manifest, for tools that look before pulling.
	SBOMAnnotation = "io.akeyless.csi-provider.sbom"
	// User is distroless's `nonroot`; numeric, since the image has no /etc/passwd.
	User   = "65532:65532"
	Source = "https://github.com/akeylesslabs/akeyless-csi-provider"
)

// Spec is everything an image is made of; equal Specs give equal digests.
type Spec struct {
	Version  string
	Revision string
	Created  time.Time
	// Platform ("linux/amd64") to binary and SBOM file.
	Binaries map[string]string
	SBOMs    map[string]string
}

// Labels are the image config labels and the index/manifest annotations.
func (s Spec) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "akeyless-csi-provider",
		"org.opencontainers.image.description": "Secrets Store CSI Driver provider for Akeyless",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.vendor":      "akeyless-csi-provider authors",
	}
}

// Platforms in index order.
func (s Spec) Platforms() []string {
	out := make([]string, 0, len(s.Binaries))
	for p := range s.Binaries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func parsePlatform(p string) (v1.Platform, error) {
	switch p {
	case "linux/amd64":
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case "linux/arm64":
		return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	}
	return v1.Platform{}, fmt.Errorf("unsupported platform %q (linux/amd64 or linux/arm64)", p)
}

type file struct {
	name string // without the leading slash
	mode int64
	data []byte
}

// layerTar is a tar stream with fixed order, owners and times.
func layerTar(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	for _, f := range files {
		if dir := filepath.Dir(f.name); dir != "." && !dirs[dir] {
			dirs[dir] = true
			if err := w.WriteHeader(&tar.Header{
				Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o555, ModTime: mtime, Format: tar.FormatUSTAR,
			}); err != nil {
				return nil, err
			}
		}
		if err := w.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)),
			ModTime: mtime, Format: tar.FormatUSTAR,
		}); err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Image builds the image of one platform.
func (s Spec) Image(platform string) (v1.Image, error) {
	plat, err := parsePlatform(platform)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(s.Binaries[platform])
	if err != nil {
		return nil, fmt.Errorf("%s binary: %w", platform, err)
	}
	sbomFile, ok := s.SBOMs[platform]
	if !ok {
		return nil, fmt.Errorf("%s: no -sbom given", platform)
	}
	sbom, err := os.ReadFile(sbomFile)
	if err != nil {
		return nil, fmt.Errorf("%s SBOM: %w", platform, err)
	}
	tarBytes, err := layerTar([]file{
		{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o555, data: bin},
		{name: strings.TrimPrefix(SBOMPath, "/"), mode: 0o444, data: sbom},
	}, s.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: s.Created.UTC()}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "hack/image: COPY akeyless-csi-provider and its SBOM",
			Comment:   "static binary (musl), built by hack/dist.sh",
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = plat.OS, plat.Architecture, plat.Variant
	cfg.Created = created
	cfg.Author = ""
	cfg.Config = v1.Config{
		User:         User,
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"serve"},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "8095/tcp": {}},
		Labels:       s.Labels(),
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	anns := s.Labels()
	anns[SBOMAnnotation] = SBOMPath
	return mutate.Annotations(img, anns).(v1.Image), nil
}

// Index builds the multi-arch image index.
func (s Spec) Index() (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range s.Platforms() {
		img, err := s.Image(p)
		if err != nil {
			return nil, err
		}
		plat, _ := parsePlatform(p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &plat},
		})
	}
	return mutate.Annotations(idx, s.Labels()).(v1.ImageIndex), nil
}

// WriteLayout writes the index as an OCI image layout in dir (replacing it); index.json names
// it by the version (`org.opencontainers.image.ref.name`, for `skopeo copy oci:DIR:VERSION`).
func (s Spec) WriteLayout(dir string) (v1.Hash, error) {
	idx, err := s.Index()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": s.Version,
	})); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// WriteTar writes the layout directory as a tarball (for `docker load`, `skopeo copy
// oci-archive:`), with sorted entries and fixed times and owners.
func WriteTar(dir, out string, mtime time.Time) error {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := tar.NewWriter(f)
	for _, path := range files {
		rel, _ := filepath.Rel(dir, path)
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX, Mode: 0o644}
		if info.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := w.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Size = tar.TypeReg, info.Size()
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

type pairs map[string]string

func (p pairs) String() string { return fmt.Sprint(map[string]string(p)) }
func (p pairs) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want PLATFORM=FILE, got %q", v)
	}
	if _, err := parsePlatform(k); err != nil {
		return err
	}
	p[k] = val
	return nil
}

func main() {
	spec := Spec{Binaries: pairs{}, SBOMs: pairs{}}
	out := flag.String("out", "", "OCI layout directory to write (replaced)")
	tarOut := flag.String("tar", "", "also write the layout as this tarball")
	created := flag.String("created", "", "image creation time, Unix seconds (the commit time)")
	flag.StringVar(&spec.Version, "version", "", "image version (org.opencontainers.image.version)")
	flag.StringVar(&spec.Revision, "revision", "", "git commit (org.opencontainers.image.revision)")
	flag.Var(pairs(spec.Binaries), "binary", "PLATFORM=FILE, once per platform")
	flag.Var(pairs(spec.SBOMs), "sbom", "PLATFORM=FILE, once per platform")
	flag.Parse()
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "build-image: "+format+"\n", args...)
		os.Exit(1)
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil {
		fail("-created %q: want Unix seconds", *created)
	}
	spec.Created = time.Unix(secs, 0).UTC()
	if *out == "" || spec.Version == "" || spec.Revision == "" || len(spec.Binaries) == 0 {
		fail("-out, -version, -revision and at least one -binary are required")
	}
	digest, err := spec.WriteLayout(*out)
	if err != nil {
		fail("%v", err)
	}
	if *tarOut != "" {
		if err := WriteTar(*out, *tarOut, spec.Created); err != nil {
			fail("%s: %v", *tarOut, err)
		}
	}
	fmt.Println(digest)
}
