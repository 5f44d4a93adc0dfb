#!/usr/bin/env bash
# Translates every Butane input of a fuzz corpus with `pxebuild butane` and runs
# Debian's ignition-validate on each config pxebuild accepted (spec 3.3.0 only:
# the packaged validator knows no later spec). Any config pxebuild emits that
# Ignition refuses is a bug in pxebuild's own validation; they are listed with
# the validator's words and counted, and the script fails if there is one.
#
# Usage: fuzz/ignition-differential.sh [CORPUS_DIR]   (default fuzz/corpus/butane)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-fuzz/corpus/butane}
command -v ignition-validate >/dev/null || {
  echo "ignition-validate missing: apt-get install ignition" >&2
  exit 2
}
cargo build --release --quiet
bin=target/release/pxebuild
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

inputs=0 accepted=0 checked=0 refused=0
for input in "$corpus"/*; do
  inputs=$((inputs + 1))
  # Inputs that are not UTF-8 or that pxebuild refuses say nothing here.
  "$bin" butane -q "$input" -o "$work/out.ign" 2>/dev/null || continue
  accepted=$((accepted + 1))
  grep -q '"version":"3.3.0"' "$work/out.ign" || continue
  checked=$((checked + 1))
  if ! ignition-validate "$work/out.ign" >"$work/why" 2>&1; then
    refused=$((refused + 1))
    echo "== $input: $(head -c 300 "$work/why")"
  fi
done
echo "inputs $inputs, accepted by pxebuild $accepted, spec 3.3.0 checked $checked, refused by ignition-validate $refused"
[ "$refused" = 0 ]
