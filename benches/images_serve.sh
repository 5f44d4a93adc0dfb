#!/usr/bin/env bash
# Benchmarks serving container image pulls: `pxebuild serve`'s OCI pull API
# against Debian's docker-registry (distribution 2.8) holding the same images,
# side by side in one run on loopback. A round is 8 concurrent pulls of
# IMAGES images with one LAYER_MB MiB layer each: every byte crosses the
# socket, nothing is unpacked or shared between pulls. Three clients:
#   containerd: Debian's containerd, as a node pulls (`ctr content fetch`,
#               digests verified, content store on tmpfs, each pull in its own
#               namespace under the "isolated" sharing policy so every pull
#               downloads); one daemon per server, so each one's CPU is its own;
#   skopeo:     `skopeo copy` to a directory on tmpfs (a process per pull);
#   curl:       the requests containerd makes, bodies to /dev/null.
# Each client runs twice: with the servers' CPU unlimited, and with each
# server held to SERVER_CPU percent of one CPU (a CFS quota on its cgroup,
# default 10). On one machine the clients and the servers share the CPUs, and
# a pulling client costs far more CPU than either server (containerd: about
# 5 s per GB, docker-registry about 1.3, pxebuild serve 0.1), so unlimited
# rounds measure the clients; the capped rounds give both servers the same
# small budget, as a boot server whose CPU is the bound (a rack's nodes pull
# with their own CPUs), and measure what each server gets out of it.
# Times come from farm-bench (--vs: the two servers in turn, median of RUNS
# pairs); each server's (and containerd's) CPU is read from /proc/PID/stat
# around the same runs. Prints a Markdown table (docs/benchmarks.md carries
# the last one). Not a test: numbers depend on the machine.
#
# Usage: benches/images_serve.sh             (RUNS=5, IMAGES=4, LAYER_MB=32)
#        RUNS=3 LAYER_MB=8 benches/images_serve.sh   (quicker)
# CLIENTS="containerd skopeo curl" chooses the clients; SERVER_CPU=10 the cap.
# Needs: cargo, python3, containerd, skopeo, docker-registry, farm-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
IMAGES=${IMAGES:-4}
LAYER_MB=${LAYER_MB:-32}
PULLS=8
CLIENTS=${CLIENTS:-containerd skopeo curl}
SERVER_CPU=${SERVER_CPU:-10}
[[ $SERVER_CPU =~ ^[0-9]+$ ]] && [ "$SERVER_CPU" -ge 1 ] && [ "$SERVER_CPU" -le 100 ] ||
  { echo "images_serve: SERVER_CPU is a percentage of one CPU (1-100), not $SERVER_CPU" >&2; exit 2; }
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
  local group
  for group in "${GROUPS_MADE[@]}"; do rmdir "$group" 2>/dev/null || true; done
}
GROUPS_MADE=()
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
# containerd: one daemon per server, so that each daemon's CPU belongs to
# one server's rounds; "isolated" sharing makes a namespace download content
# another namespace already holds, so every pull of every round downloads.
start_containerd() { # $1: name -> the daemon's PID in CTRD_PID
  local dir=$OUT/containerd-$1
  mkdir -p "$dir"
  cat >"$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
address = "$dir/containerd.sock"
[ttrpc]
address = "$dir/ttrpc.sock"
[plugins."io.containerd.metadata.v1.bolt"]
content_sharing_policy = "isolated"
CONF
  containerd --config "$dir/config.toml" >"$WORK/containerd-$1.log" 2>&1 &
  CTRD_PID=$!
  PIDS+=("$CTRD_PID")
  for _ in $(seq 300); do
    ctr --address "$dir/containerd.sock" version >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "containerd ($1) did not start:" >&2
  cat "$WORK/containerd-$1.log" >&2
  exit 1
}
if [[ " $CLIENTS " == *" containerd "* ]]; then
  start_containerd pxebuild
  CTRD_PXE=$CTRD_PID
  start_containerd registry
  CTRD_REG=$CTRD_PID
fi
# $1: port; the daemon serving that port's rounds is chosen by it.
cat >"$WORK/pull-containerd.sh" <<SH
#!/bin/sh
set -e
if [ "\$1" = "$PXE_PORT" ]; then sock=$OUT/containerd-pxebuild/containerd.sock
else sock=$OUT/containerd-registry/containerd.sock; fi
round=r\$(date +%s%N)
for i in \$(seq 0 $((PULLS - 1))); do
  ctr --address "\$sock" -n "\$round-\$i" content fetch --plain-http --platform linux/amd64 \\
    "127.0.0.1:\$1/bench.test/img\$((i % $IMAGES)):1" >/dev/null &
  pids="\$pids \$!"
done
for pid in \$pids; do wait \$pid; done # a failed pull fails the round
SH
chmod +x "$WORK/pull-skopeo.sh" "$WORK/pull-curl.sh" "$WORK/pull-containerd.sh"

# One CPU cgroup per server (cgroup v2's cpu.max, or v1's CFS quota), so a
# cap holds the server and every thread it starts.
CPU_ROOT=/sys/fs/cgroup
[ -f "$CPU_ROOT/cgroup.controllers" ] || CPU_ROOT=/sys/fs/cgroup/cpu
cgroup_of() { # $1: server name $2: PID -> the group's directory
  local group=$CPU_ROOT/pxebuild-bench-$$-$1
  mkdir "$group" || { echo "images_serve: cannot make the CPU cgroup $group (root, and a cpu controller, are needed)" >&2; exit 1; }
  GROUPS_MADE+=("$group")
  echo "$2" >"$group/cgroup.procs"
  echo "$group"
}
set_cap() { # $1: percent of one CPU, or "max"
  local group
  for group in "${GROUPS_MADE[@]}"; do
    if [ -f "$group/cpu.max" ]; then
      if [ "$1" = max ]; then echo "max 100000"; else echo "$(($1 * 1000)) 100000"; fi >"$group/cpu.max"
    else
      echo 100000 >"$group/cpu.cfs_period_us"
      if [ "$1" = max ]; then echo -1; else echo $(($1 * 1000)); fi >"$group/cpu.cfs_quota_us"
    fi
  done
}
cgroup_of pxebuild "$PXE" >/dev/null
cgroup_of registry "$REG" >/dev/null

BYTES=$((IMAGE_BYTES * PULLS))
ROUNDS=$((RUNS + 1)) # farm-bench runs each command RUNS times plus one warm-up
ROWS=()
measure() { # $1: client name $2: the servers' CPU cap (percent, or max)
  set_cap "$2"
  local pxe0 reg0 pxe_cpu reg_cpu a b ab
  pxe0=$(cpu_s "$PXE")
  reg0=$(cpu_s "$REG")
  local cpxe0=0 creg0=0 cpxe=- creg=-
  if [ "$1" = containerd ]; then
    cpxe0=$(cpu_s "$CTRD_PXE")
    creg0=$(cpu_s "$CTRD_REG")
  fi
  farm-bench -n "$RUNS" --timeout 1800 --vs "$WORK/pull-$1.sh $REG_PORT" \
    -- "$WORK/pull-$1.sh" "$PXE_PORT" | tee "$WORK/farm-$1.txt"
  pxe_cpu=$(awk -v a="$(cpu_s "$PXE")" -v b="$pxe0" 'BEGIN { print a - b }')
  reg_cpu=$(awk -v a="$(cpu_s "$REG")" -v b="$reg0" 'BEGIN { print a - b }')
  if [ "$1" = containerd ]; then
    cpxe=$(awk -v a="$(cpu_s "$CTRD_PXE")" -v b="$cpxe0" -v gb="$(awk -v b="$BYTES" -v n="$ROUNDS" 'BEGIN { print b * n / 1e9 }')" 'BEGIN { printf "%.3f", (a - b) / gb }')
    creg=$(awk -v a="$(cpu_s "$CTRD_REG")" -v b="$creg0" -v gb="$(awk -v b="$BYTES" -v n="$ROUNDS" 'BEGIN { print b * n / 1e9 }')" 'BEGIN { printf "%.3f", (a - b) / gb }')
  fi
  a=$(awk 'index($0, "A wall s") == 1 { print $5 }' "$WORK/farm-$1.txt")
  b=$(awk 'index($0, "B wall s") == 1 { print $5 }' "$WORK/farm-$1.txt")
  ab=$(awk '/^A\/B wall/ { print $4 }' "$WORK/farm-$1.txt")
  local cap="unlimited"
  [ "$2" = max ] || cap="$2% of a CPU"
  ROWS+=("$(awk -v c="$1" -v cap="$cap" -v a="$a" -v b="$b" -v ab="$ab" -v bytes="$BYTES" \
    -v pc="$pxe_cpu" -v rc="$reg_cpu" -v n="$ROUNDS" -v cp="$cpxe" -v cr="$creg" 'BEGIN {
    gb = bytes * n / 1e9
    printf "| %s | %s | %.1f | %.1f | %.2fx | %.3f | %.3f | %.1fx | %s | %s |", c, cap, bytes / a / 1e6, \
      bytes / b / 1e6, 1 / ab, pc / gb, rc / gb, (pc > 0 ? rc / pc : 0), cp, cr
  }')")
}
for client in $CLIENTS; do
  measure "$client" max
  measure "$client" "$SERVER_CPU"
done

echo
echo "$PULLS concurrent pulls of $IMAGES images with one ${LAYER_MB} MiB layer each, on loopback;"
echo "MB/s from the median round of $RUNS (farm-bench --vs, the servers in turn); CPU from /proc/PID/stat."
echo
echo "| client | servers' CPU | pxebuild serve MB/s | docker-registry MB/s | pxebuild vs registry (paired median; goal >= 1.5x) | pxebuild CPU s/GB | registry CPU s/GB | registry / pxebuild CPU (goal > 1x) | containerd CPU s/GB pulling from pxebuild | from registry |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
