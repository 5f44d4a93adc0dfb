#!/usr/bin/env bash
# Benchmarks serving container image pulls: `pxebuild serve`'s OCI pull API
# against Debian's docker-registry (distribution 2.8) holding the same images,
# side by side in one run on loopback. 8 concurrent pulls (skopeo copying
# each image to a directory on tmpfs: every byte crosses the socket, nothing
# is unpacked or shared between pulls) of IMAGES images with one LAYER_MB MiB
# layer each. Times come from farm-bench (--vs: the two servers in turn,
# median of RUNS pairs); each server's CPU is read from /proc/PID/stat around
# the same runs. Prints a Markdown table (docs/benchmarks.md carries the last
# one). Not a test: numbers depend on the machine.
#
# Usage: benches/images_serve.sh             (RUNS=5, IMAGES=4, LAYER_MB=32)
#        RUNS=3 LAYER_MB=8 benches/images_serve.sh   (quicker)
# Needs: cargo, python3, skopeo, docker-registry, farm-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
IMAGES=${IMAGES:-4}
LAYER_MB=${LAYER_MB:-32}
PULLS=8
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN=$TARGET/release/pxebuild

WORK=$(mktemp -d /tmp/pxebuild-images-bench.XXXXXX)
OUT=$(mktemp -d /dev/shm/pxebuild-images-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# User + system seconds of a running process so far.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# --- the tree: IMAGES one-layer OCI images at the dist/ contract paths --------
python3 - "$WORK/dist" "$IMAGES" "$LAYER_MB" <<'PY'
import gzip, hashlib, json, os, sys
dist, images, layer_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = []
def put(rel, data):
    path = os.path.join(dist, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    files.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()
os.makedirs(os.path.join(dist, "tftp"), exist_ok=True)
for i in range(images):
    name = f"bench.test/img{i}"
    # A real gzip stream (of random bytes: it stays the size asked for), or
    # skopeo would compress it again on the way into the registry.
    layer = gzip.compress(os.urandom(layer_mb << 20), compresslevel=1, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(layer), "size": len(layer)}],
    }).encode()
    for ref in ("1", digest(manifest)):
        put(f"http/v2/{name}/manifests/{ref}.oci-manifest", manifest)
    for blob in (config, layer):
        put(f"http/v2/{name}/blobs/{digest(blob)}", blob)
    with open(os.path.join(dist, "..", "pulls.txt"), "a") as f:
        f.write(f"{name} {digest(config)} {digest(layer)}\n")
files.sort(key=lambda f: f["path"])
with open(os.path.join(dist, "manifest.json"), "w") as f:
    json.dump({"format": 1, "inputs": "00", "files": files, "nodes": [], "access": []}, f)
PY
IMAGE_BYTES=$(stat -c %s "$WORK"/dist/http/v2/bench.test/img0/blobs/* | sort -n | tail -1)

# --- servers ------------------------------------------------------------------
"$BIN" -q serve "$WORK/dist" --listen 127.0.0.1 --http-port 0 --tftp-port 0 \
  --admin off --no-log-file 2>"$WORK/pxe.err" &
PXE=$!
PIDS+=("$PXE")
for _ in $(seq 300); do grep -q '^http listening' "$WORK/pxe.err" && break; sleep 0.1; done
PXE_PORT=$(sed -n 's/^http listening on .*:\([0-9]*\)$/\1/p' "$WORK/pxe.err")

REG_PORT=$(free_port)
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$REG_PORT
CONF
docker-registry serve "$WORK/registry.yml" 2>"$WORK/registry.err" &
REG=$!
PIDS+=("$REG")
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.1; done

# The same images, pushed into the registry from pxebuild serve.
for i in $(seq 0 $((IMAGES - 1))); do
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://127.0.0.1:$PXE_PORT/bench.test/img$i:1" \
    "docker://127.0.0.1:$REG_PORT/bench.test/img$i:1"
done

# Both servers must hold the same bytes under the same digests.
while read -r name config layer; do
  for blob in "$config" "$layer"; do
    curl -sf -o /dev/null "http://127.0.0.1:$REG_PORT/v2/$name/blobs/$blob" ||
      { echo "docker-registry lacks $name@$blob" >&2; exit 1; }
  done
done <"$WORK/pulls.txt"

# One round: PULLS concurrent pulls, spread over the images, from port $1.
# skopeo: a whole client (token probe, manifest, blobs verified and written).
cat >"$WORK/pull-skopeo.sh" <<SH
#!/bin/sh
set -e
dir=\$(mktemp -d $OUT/pull.XXXXXX)
for i in \$(seq 0 $((PULLS - 1))); do
  skopeo copy -q --src-tls-verify=false \\
    "docker://127.0.0.1:\$1/bench.test/img\$((i % $IMAGES)):1" "dir:\$dir/\$i" &
  pids="\$pids \$!"
done
for pid in \$pids; do wait \$pid; done # a failed pull fails the round
rm -rf "\$dir"
SH
# curl: the requests containerd makes for a pull (HEAD and GET of the
# manifest, GET of the config and the layer; --next ends -I's reach) on
# one connection, bodies to
# /dev/null: what is left of the client is small, so the servers show.
cat >"$WORK/pull-curl.sh" <<SH
#!/bin/sh
set -e
i=0
while [ \$i -lt $PULLS ]; do
  set -- "\$1" \$(sed -n "\$((i % $IMAGES + 1))p" $WORK/pulls.txt)
  u="http://127.0.0.1:\$1/v2/\$2"
  curl -sf -o /dev/null -I "\$u/manifests/1" --next -sf -o /dev/null "\$u/manifests/1" \\
    -o /dev/null "\$u/blobs/\$3" -o /dev/null "\$u/blobs/\$4" &
  pids="\$pids \$!"
  i=\$((i + 1))
done
for pid in \$pids; do wait \$pid; done # a failed request fails the round
SH
chmod +x "$WORK/pull-skopeo.sh" "$WORK/pull-curl.sh"

BYTES=$((IMAGE_BYTES * PULLS))
ROUNDS=$((RUNS + 1)) # farm-bench runs each command RUNS times plus one warm-up
ROWS=()
measure() { # $1: client name
  local pxe0 reg0 pxe_cpu reg_cpu a b ab
  pxe0=$(cpu_s "$PXE")
  reg0=$(cpu_s "$REG")
  farm-bench -n "$RUNS" --timeout 1800 --vs "$WORK/pull-$1.sh $REG_PORT" \
    -- "$WORK/pull-$1.sh" "$PXE_PORT" | tee "$WORK/farm-$1.txt"
  pxe_cpu=$(awk -v a="$(cpu_s "$PXE")" -v b="$pxe0" 'BEGIN { print a - b }')
  reg_cpu=$(awk -v a="$(cpu_s "$REG")" -v b="$reg0" 'BEGIN { print a - b }')
  a=$(awk 'index($0, "A wall s") == 1 { print $5 }' "$WORK/farm-$1.txt")
  b=$(awk 'index($0, "B wall s") == 1 { print $5 }' "$WORK/farm-$1.txt")
  ab=$(awk '/^A\/B wall/ { print $4 }' "$WORK/farm-$1.txt")
  ROWS+=("$(awk -v c="$1" -v a="$a" -v b="$b" -v ab="$ab" -v bytes="$BYTES" \
    -v pc="$pxe_cpu" -v rc="$reg_cpu" -v n="$ROUNDS" 'BEGIN {
    gb = bytes * n / 1e9
    printf "| %s | %.1f | %.1f | %.2fx | %.3f | %.3f | %.1fx |", c, bytes / a / 1e6, \
      bytes / b / 1e6, 1 / ab, pc / gb, rc / gb, (pc > 0 ? rc / pc : 0)
  }')")
}
measure skopeo
measure curl

echo
echo "$PULLS concurrent pulls of $IMAGES images with one ${LAYER_MB} MiB layer each, on loopback;"
echo "MB/s from the median round of $RUNS (farm-bench --vs, the servers in turn); CPU from /proc/PID/stat."
echo
echo "| client | pxebuild serve MB/s | docker-registry MB/s | pxebuild vs registry (paired median; goal >= 1.5x) | pxebuild CPU s/GB | registry CPU s/GB | registry / pxebuild CPU (goal > 1x) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
