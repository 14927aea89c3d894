#!/usr/bin/env bash
# The size rule of the code (README, "Architecture"): no production source file over 500 lines.
# Production lines are the lines of a file before its inline test module (`#[cfg(test)]` then
# `mod tests {`, at the end of the file); a test module in a file of its own, `tests.rs`, isn't
# production code. Functions are held to 80 lines by clippy (clippy.toml,
# `clippy::too_many_lines`, denied in each crate outside tests).
#
# usage: hack/check-file-size.sh     exit 1 naming every file over the limit
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LIMIT=500

# Files allowed over the limit, each with its one-line reason ("path|reason").
EXCEPTIONS=(
)

declare -A excepted=()
for entry in ${EXCEPTIONS[@]+"${EXCEPTIONS[@]}"}; do
  excepted["${entry%%|*}"]="${entry#*|}"
done

over=0
while IFS= read -r file; do
  [[ $(basename "$file") == tests.rs ]] && continue
  # Stop at `#[cfg(test)]` + `mod NAME {` (the test module itself); a `#[cfg(test)] mod x;`
  # declaration or a test-only item above other code is counted like any line.
  lines=$(awk '/^#\[cfg\(test\)\]/ {
      if ((getline next_line) > 0) { if (next_line ~ /^mod [A-Za-z0-9_]+ *\{/) exit; n++ }
    } { n++ } END { print n + 0 }' "$file")
  (( lines > LIMIT )) || continue
  if [[ -n ${excepted[$file]:-} ]]; then
    echo "exception: $file: $lines production lines (${excepted[$file]})"
  else
    echo "$file: $lines production lines, over the $LIMIT-line limit: split it by concern" >&2
    over=1
  fi
done < <(find src crates -name '*.rs' -not -path '*/target/*' | sort)
for file in "${!excepted[@]}"; do
  [[ -f $file ]] || { echo "stale exception: $file does not exist" >&2; over=1; }
done
[[ $over -eq 0 ]] || exit 1
echo "file sizes OK: no production file over $LIMIT lines"
