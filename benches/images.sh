#!/usr/bin/env bash
# Image mirroring benchmark: the build-time copy of a serve-mode site's images
# (`pxebuild mirror`, which runs the build's image steps: resolve each tag,
# fetch the manifests and stream every blob into the cache, verified, then lay
# them out) against `skopeo copy docker://… dir:…` of the same images, both
# from Debian's docker-registry on loopback, both from a cold image cache.
# IMAGES images (default 4) of LAYERS layers (default 2) of MIB MiB of random
# data each (default 32); skopeo copies JOBS images at once, as pxebuild's
# --jobs (default 4). RUNS alternating runs of each (default 5); prints the
# median wall time, CPU time and peak RSS of each and the ratio.
# Goal: pxebuild >= 1.0x skopeo (time of skopeo / time of pxebuild).
# BENCH_HOLD=1 keeps the setup running and prints the two commands, for an
# external timer. Figures, never assertions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
IMAGES=${IMAGES:-4} LAYERS=${LAYERS:-2} MIB=${MIB:-32} JOBS=${JOBS:-4} RUNS=${RUNS:-5}
for tool in docker-registry skopeo umoci python3 curl; do
    command -v "$tool" >/dev/null || { echo "images.sh: $tool is missing" >&2; exit 2; }
done
cargo build --release --locked -q
bin=$root/target/release/pxebuild
work=$(mktemp -d)
mkdir -m 700 "$work/warm"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The site's other artifacts: the fixture mirror (fetched once, not measured).
tests/fixtures/mirror/generate.sh "$work/mirror" >/dev/null
mport=$(free_port)
python3 -m http.server "$mport" --bind 127.0.0.1 --directory "$work/mirror" >/dev/null 2>&1 &
pids+=($!)
export PXEBUILD_MIRROR="http://127.0.0.1:$mport"
export PXEBUILD_SIGNING_KEY="$root/tests/fixtures/mirror/test-key.pub.asc"

# The upstream registry.
rport=$(free_port)
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$rport
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$rport/v2/" >/dev/null && break; sleep 0.05; done

# The images: random layers (incompressible, as real layers mostly are).
umoci init --layout "$work/oci"
refs=()
for ((i = 1; i <= IMAGES; i++)); do
    umoci new --image "$work/oci:img$i"
    for ((l = 1; l <= LAYERS; l++)); do
        head -c "${MIB}M" /dev/urandom >"$work/layer"
        umoci insert --rootless --image "$work/oci:img$i" "$work/layer" "/layer$l"
    done
    umoci config --image "$work/oci:img$i" --os linux --architecture amd64
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:img$i" \
        "docker://127.0.0.1:$rport/example.org/bench/img$i:1"
    refs+=("\"example.org/bench/img$i:1\"")
done

# The site: the example's, in serve mode, the images as extras, the
# registry as its registry_mirror; its cache warmed with everything else.
mkdir -p "$work/site"
ln -s "$root/templates" "$work/site/templates"
ln -s "$root/payload" "$work/site/payload"
cp site.toml "$work/site/site.toml"
PXEBUILD_CACHE="$work/warm" "$bin" -q --site "$work/site/site.toml" mirror "$work/warm-out" >/dev/null
printf '\n[images]\nmode = "serve"\nregistry_mirror = "http://127.0.0.1:%s"\nextra = [%s]\n' \
    "$rport" "$(IFS=,; echo "${refs[*]}")" >>"$work/site/site.toml"

cat >"$work/pxebuild.sh" <<EOF
#!/bin/sh
# A cold image cache (the other artifacts cached), a new mirror directory.
set -e
export PXEBUILD_MIRROR="$PXEBUILD_MIRROR" PXEBUILD_SIGNING_KEY="$PXEBUILD_SIGNING_KEY"
rm -rf "$work/c" "$work/out"
cp -al "$work/warm" "$work/c"
PXEBUILD_CACHE="$work/c" exec "$bin" -q --site "$work/site/site.toml" mirror --jobs $JOBS "$work/out"
EOF
cat >"$work/skopeo.sh" <<EOF
#!/bin/sh
set -e
rm -rf "$work/sk"
mkdir "$work/sk"
seq $IMAGES | xargs -P $JOBS -I{} skopeo copy --quiet --src-tls-verify=false \
    "docker://127.0.0.1:$rport/example.org/bench/img{}:1" "dir:$work/sk/img{}"
EOF
chmod +x "$work/pxebuild.sh" "$work/skopeo.sh"
"$work/pxebuild.sh" >/dev/null # warm-up, and a check that it works
"$work/skopeo.sh" >/dev/null

if [[ -n "${BENCH_HOLD:-}" ]]; then
    echo "A: $work/pxebuild.sh"
    echo "B: $work/skopeo.sh"
    echo "holding; Ctrl-C ends the setup"
    sleep infinity
fi

measure() { # appends "wall cpu peak-MB" of one run to $2
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$1" >/dev/null 2>&1
    awk '{printf "%.3f %.3f %.1f\n", $1, $2 + $3, $4 / 1024}' "$work/time" >>"$2"
}
: >"$work/a" && : >"$work/b"
for ((r = 0; r < RUNS; r++)); do
    measure "$work/pxebuild.sh" "$work/a"
    measure "$work/skopeo.sh" "$work/b"
done
median() { sort -n -k"$2" "$1" | awk -v k="$2" '{v[NR] = $k} END {print v[int((NR + 1) / 2)]}'; }
total=$((IMAGES * LAYERS * MIB))
printf '%d images, %d MiB of layers, %d runs each (medians)\n' "$IMAGES" "$total" "$RUNS"
printf '%-26s | %8s | %8s | %8s\n' "" "wall s" "cpu s" "peak MB"
printf '%-26s | %8s | %8s | %8s\n' "pxebuild mirror" "$(median "$work/a" 1)" "$(median "$work/a" 2)" "$(median "$work/a" 3)"
printf '%-26s | %8s | %8s | %8s\n' "skopeo copy -> dir:" "$(median "$work/b" 1)" "$(median "$work/b" 2)" "$(median "$work/b" 3)"
awk -v a="$(median "$work/a" 1)" -v b="$(median "$work/b" 1)" \
    'BEGIN {printf "pxebuild is %.2fx skopeo (wall; >1 is faster)\n", b / a}'
