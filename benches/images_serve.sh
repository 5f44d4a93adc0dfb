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
import hashlib, json, os, sys
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
    layer = os.urandom(layer_mb << 20)
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
files.sort(key=lambda f: f["path"])
with open(os.path.join(dist, "manifest.json"), "w") as f:
    json.dump({"format": 1, "inputs": "00", "files": files, "nodes": [], "access": []}, f)
PY
IMAGE_BYTES=$(( (LAYER_MB << 20) ))

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

# One round: PULLS concurrent pulls, spread over the images, from port $1.
cat >"$WORK/pull8.sh" <<SH
#!/bin/sh
set -e
dir=\$(mktemp -d $OUT/pull.XXXXXX)
for i in \$(seq 0 $((PULLS - 1))); do
  skopeo copy -q --src-tls-verify=false \\
    "docker://127.0.0.1:\$1/bench.test/img\$((i % $IMAGES)):1" "dir:\$dir/\$i" &
done
wait
rm -rf "\$dir"
SH
chmod +x "$WORK/pull8.sh"

PXE_CPU0=$(cpu_s "$PXE")
REG_CPU0=$(cpu_s "$REG")
farm-bench -n "$RUNS" --timeout 1800 --vs "$WORK/pull8.sh $REG_PORT" \
  -- "$WORK/pull8.sh" "$PXE_PORT" | tee "$WORK/farm.txt"
PXE_CPU=$(awk -v a="$(cpu_s "$PXE")" -v b="$PXE_CPU0" 'BEGIN { print a - b }')
REG_CPU=$(awk -v a="$(cpu_s "$REG")" -v b="$REG_CPU0" 'BEGIN { print a - b }')

# farm-bench ran each command RUNS times plus one warm-up.
ROUNDS=$((RUNS + 1))
BYTES=$((IMAGE_BYTES * PULLS))
wall() { awk -v w="$1 wall s" 'index($0, w) == 1 { print $5 }' "$WORK/farm.txt"; }
A_WALL=$(wall A)
B_WALL=$(wall B)
AB=$(awk '/^A\/B wall/ { print $3 }' "$WORK/farm.txt")
echo
echo "$PULLS concurrent pulls (skopeo) of $IMAGES images with one ${LAYER_MB} MiB layer each,"
echo "median of $RUNS rounds per server (farm-bench --vs, A = pxebuild serve, B = docker-registry):"
echo
awk -v a="$A_WALL" -v b="$B_WALL" -v ab="$AB" -v bytes="$BYTES" \
    -v pc="$PXE_CPU" -v rc="$REG_CPU" -v n="$ROUNDS" 'BEGIN {
  gb = bytes * n / 1e9
  printf "| server | round (s, median) | MB/s | server CPU s per GB |\n|---|---|---|---|\n"
  printf "| pxebuild serve | %.3f | %.1f | %.3f |\n", a, bytes / a / 1e6, pc / gb
  printf "| docker-registry | %.3f | %.1f | %.3f |\n", b, bytes / b / 1e6, rc / gb
  printf "\nthroughput pxebuild / docker-registry: %.2fx (paired: %.2fx; goal >= 1.5x)\n", b / a, 1 / ab
  if (pc > 0) printf "CPU per GB docker-registry / pxebuild: %.2fx (goal > 1x)\n", rc / pc
}'
