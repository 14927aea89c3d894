#!/usr/bin/env bash
# Builds the shipped binary for each architecture exactly as the Dockerfile and the OCI image
# do (hack/dist.sh: musl, crt-static, the `dist` profile, `cargo auditable`) and checks what the
# image relies on: statically linked, no interpreter, under the size budget, the dependency list
# embedded, and it runs with no libc around it. A binary of another architecture runs under
# qemu-user (Debian qemu-user, installed when missing): `version --verbose` (target, profile and
# features as hack/dist.sh asked), that it carries none of the developer tools (no `demo`,
# `bench` or `emulator` subcommand, none of the emulator's routes or names), and a mount over its
# own Unix socket against the emulator (hack/verify/run.sh socket: `serve` as the image runs it).
#
# usage: hack/check-static-binary.sh [ARCH...]   (amd64, arm64; default: this machine's)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAX_BYTES=$((25 * 1024 * 1024))
native="$(uname -m)"
arches=("$@")
[[ ${#arches[@]} -gt 0 ]] || arches=("$native")

for arch in "${arches[@]}"; do
  triple="$(hack/dist.sh triple "$arch")"
  cpu="${triple%%-*}"
  echo "== $triple"
  bin="$(hack/dist.sh build "$arch")"
  run=()
  if [[ $cpu != "$native" ]]; then
    if ! command -v "qemu-$cpu" >/dev/null 2>&1; then
      apt-get install -y --no-install-recommends qemu-user >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends qemu-user >/dev/null; }
    fi
    run=("qemu-$cpu")
  fi
  size=$(stat -c %s "$bin")
  echo "binary: $bin ($size bytes, $((size / 1024 / 1024)) MiB)"
  if command -v file >/dev/null 2>&1; then
    file "$bin"
    grep -Eq 'statically linked|static-pie linked' <<<"$(file "$bin")" || { echo "not statically linked" >&2; exit 1; }
  fi
  # Each check reads a captured listing: `readelf ... | grep -q` under pipefail fails at random
  # when grep exits before readelf has written its last buffer (SIGPIPE).
  dynamic="$(readelf -d "$bin" 2>/dev/null || true)"
  headers="$(readelf -h "$bin")"
  programs="$(readelf -l "$bin")"
  sections="$(readelf -S "$bin")"
  if grep -q 'NEEDED' <<<"$dynamic"; then
    readelf -d "$bin" >&2
    echo "dynamic dependencies found" >&2
    exit 1
  fi
  if grep -q 'INTERP' <<<"$programs"; then
    echo "the binary asks for a program interpreter" >&2
    exit 1
  fi
  want_machine=$([[ $cpu == aarch64 ]] && echo AArch64 || echo X86-64)
  grep -q "Machine:.*$want_machine" <<<"$headers" || { echo "not a $want_machine binary" >&2; exit 1; }
  grep -q '\.dep-v0' <<<"$sections" || { echo "no cargo auditable dependency list (.dep-v0)" >&2; exit 1; }
  [[ $size -lt $MAX_BYTES ]] || { echo "binary is over the 25 MiB budget" >&2; exit 1; }
  # Run it with an empty environment, as in the image.
  info="$(env -i "${run[@]}" "$bin" version --verbose)"
  echo "$info"
  features="$(hack/dist.sh features)"
  for want in "target: $triple" "profile: $(hack/dist.sh profile)" "static (crt-static): true"; do
    grep -qxF "$want" <<<"$info" || { echo "version --verbose: want '$want'" >&2; exit 1; }
  done
  if [[ -z $features ]]; then
    grep -qxF "features: (none)" <<<"$info" || { echo "version --verbose: want no features" >&2; exit 1; }
  fi
  # The emulator is a test double: the shipped binary has neither its commands nor its code.
  help="$(env -i "${run[@]}" "$bin" --help)"
  for tool in demo bench emulator; do
    if grep -qE "^  $tool( |$)" <<<"$help"; then
      echo "the shipped binary has the developer command '$tool'" >&2
      exit 1
    fi
    if env -i "${run[@]}" "$bin" "$tool" --help >/dev/null 2>&1; then
      echo "the shipped binary accepts '$tool'" >&2
      exit 1
    fi
  done
  text="$(strings -n 8 "$bin")"
  for marker in /__emulator akeyless-emulator akeyless_emulator 'Akeyless emulator listening'; do
    if grep -qF -- "$marker" <<<"$text"; then
      echo "the shipped binary contains the emulator ('$marker')" >&2
      exit 1
    fi
  done
  echo "no developer tools, no emulator in the binary"
  hack/verify/run.sh socket "$bin" "${run[*]}"
  echo "static binary OK: $triple"
done
