#!/usr/bin/env bash
# Builds the binary exactly as the Dockerfile's build stage does (musl, crt-static, `dist`
# profile) and checks what the image relies on: statically linked, no interpreter, under the
# size budget, and it runs (`version`, then a whole mount with `demo`) with no libc around it.
# Installs what it needs when missing: the musl target (rustup) and musl-tools (apt-get).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAX_BYTES=$((25 * 1024 * 1024))
triple="$(uname -m)-unknown-linux-musl"
if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
  rustup target add "$triple"
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  # ring's C code is compiled with musl-gcc for this target.
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    apt-get install -y --no-install-recommends musl-tools >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get install -y --no-install-recommends musl-tools >/dev/null; }
  else
    echo "musl-gcc is required (Debian/Ubuntu: apt-get install musl-tools)" >&2
    exit 1
  fi
fi
export CARGO_TARGET_DIR="${STATIC_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider/target-static}"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --profile dist --target "$triple"
bin="$CARGO_TARGET_DIR/$triple/dist/akeyless-csi-provider"
size=$(stat -c %s "$bin")
echo "binary: $bin ($size bytes, $((size / 1024 / 1024)) MiB)"
if command -v file >/dev/null 2>&1; then
  file "$bin"
  file "$bin" | grep -Eq 'statically linked|static-pie linked' || { echo "not statically linked" >&2; exit 1; }
fi
if ldd "$bin" 2>&1 | grep -Eq '=>|ld-linux'; then
  ldd "$bin" >&2 || true
  echo "dynamic dependencies found" >&2
  exit 1
fi
echo "ldd: $(ldd "$bin" 2>&1 | head -1)"
if readelf -l "$bin" | grep -q 'INTERP'; then
  echo "the binary asks for a program interpreter" >&2
  exit 1
fi
[[ $size -lt $MAX_BYTES ]] || { echo "binary is over the 25 MiB budget" >&2; exit 1; }
# Run it with an empty environment, as in the distroless image.
env -i "$bin" version
env -i "$bin" demo --out "$(mktemp -d)" >/dev/null
echo "static binary OK"
