#!/usr/bin/env bash
# build-baseline.sh COMMIT OUT builds the filter module as it was at COMMIT into OUT, for
# make bench's side-by-side V8 figures. The old sources are built with today's toolchain
# and then given today's load fix (cmd/wasmstub, Envoy 1.33's imports), so that the
# baseline runs where the current module runs; what differs is the filter's own code.
set -euo pipefail
commit=${1:?usage: build-baseline.sh COMMIT OUT}
out=${2:?usage: build-baseline.sh COMMIT OUT}
if [ -s "$out" ]; then
  exit 0 # built before; the commit's sources do not change
fi
if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
  echo "build-baseline.sh: commit $commit is not in this clone (git fetch --unshallow, or set V8_BASELINE)" >&2
  exit 1
fi
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git archive "$commit" | tar -x -C "$src"
mkdir -p "$(dirname "$out")"
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
(cd "$src" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$abs_out.tmp" .)
go run ./cmd/wasmstub -imports testdata/envoy-host-abi.txt "$abs_out.tmp"
mv "$abs_out.tmp" "$out"
echo "built the module of $commit into $out ($(wc -c <"$out") bytes)"
