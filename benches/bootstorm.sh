#!/usr/bin/env bash
# Boot storm bench: N simulated PXE clients start at once, each from its own
# network namespace with its node's address, and do what a node's firmware and
# loader do: TFTP the loader, ldlinux and the per-MAC config with the options
# firmware sends (BIOS: blksize 1432 and tsize, no windowsize, as lpxelinux asked
# in the lab; UEFI: blksize 1468, windowsize 4 and tsize, as OVMF asks), then
# HTTP the kernel and the full-size initrd, then the node's own Ignition
# (pxebuild serve hands it to that node's address only). Odd nodes are BIOS,
# even ones UEFI. The same tree is served, one after the other in the same
# run, by `pxebuild serve`, by nginx + tftpd-hpa and by nginx + dnsmasq's TFTP.
# Prints per server and N: completion time p50/p99 (from the storm's start to
# a client's last byte), failures, the TFTP requests answered only after a
# resend (the slowest answer in brackets), UDP datagrams the kernel dropped on
# receive (InErrors from /proc/net/snmp, which counts RcvbufErrors too; in the
# servers' namespace / summed over the clients'), server CPU seconds and peak
# RSS, as a Markdown table ready for the README. Each N runs ROUNDS rounds;
# every round runs each server once, in an order rotated from round to round so
# that no server always goes first (or last) while the machine's other load
# comes and goes. Printed: every storm, then per N and server the medians over
# the rounds, and pxebuild's p99 against the best peer's of the same round
# (median of those paired ratios). Not a test: the numbers depend on the
# machine. Goals (N = 200): no failure, pxebuild's p99 <= 0.8x the best peer's,
# pxebuild's RSS < 64 MB.
#
# Usage: benches/bootstorm.sh [N ...]      (default: 50 200)
# Environment: KERNEL_BYTES, INITRD_BYTES (default: the sizes
# tests/fixtures/standin-os/pad.sh documents), SERVERS (default:
# "pxebuild nginx-tftpd nginx-dnsmasq"), ROUNDS (default 3), CLIENT_TIMEOUT (seconds a client may
# take before it counts as failed; default 1200), REQUEST_TRIES (times a
# client sends a TFTP request, one second apart, before it gives up; default
# 130: syslinux, which fetches ldlinux and the config, resends its request 31
# times over about 130 s, core/fs/pxe/tftp.c's TimeoutTable in 55 ms jiffies),
# KEEP_LOGS (a directory:
# pxebuild serve then logs there, and the clients' results and errors are
# copied there).
# Needs root (namespaces), and what the lab needs: the stand-in OS build
# (tests/fixtures/standin-os/build.sh), nginx, tftpd-hpa, dnsmasq, gnupg,
# python3, iproute2. The tree is a site with max(N) nodes built by `pxebuild
# build` from the fixture mirror (tests/fixtures/mirror/generate.sh) with the
# full-size stand-in published as the Flatcar PXE files. Everything runs in
# namespaces the script creates (the servers' one holds the bridge) and
# removes; the host's network is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(50 200)
MAX=0
for n in "${COUNTS[@]}"; do
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 240 ] || { echo "bootstorm: N must be 1-240 (the site's /24), not $n" >&2; exit 2; }
  [ "$n" -gt "$MAX" ] && MAX=$n
done
SERVERS=${SERVERS:-pxebuild nginx-tftpd nginx-dnsmasq}
ROUNDS=${ROUNDS:-3}
[[ $ROUNDS =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] || { echo "bootstorm: ROUNDS must be a count, not $ROUNDS" >&2; exit 2; }
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-1200}
REQUEST_TRIES=${REQUEST_TRIES:-130}
[ "$(id -u)" = 0 ] || { echo "bootstorm: needs root (network namespaces)" >&2; exit 2; }

TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN=$ROOT/$TARGET/release/pxebuild
bench_bin() {
  cargo bench --bench "$1" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p'
}
GET=$(bench_bin tftp_get)
HGET=$(bench_bin http_get)
[ -x "$GET" ] && [ -x "$HGET" ] || { echo "bootstorm: could not build the bench clients" >&2; exit 1; }
case $GET in /*) ;; *) GET=$ROOT/$GET ;; esac
case $HGET in /*) ;; *) HGET=$ROOT/$HGET ;; esac

WORK=$(mktemp -d /tmp/pxebuild-storm.XXXXXX)
chmod 755 "$WORK"
TAG=st$$
SRV=${TAG}s
PIDS=()
NSES=()
cleanup() {
  local pid ns
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- the tree: a site with MAX nodes, built from the fixture mirror -----------
OS=$ROOT/$TARGET/tmp/standin-os
tests/fixtures/standin-os/build.sh "$OS" >&2
tests/fixtures/standin-os/pad.sh "$OS" ${KERNEL_BYTES:+"$KERNEL_BYTES"} ${INITRD_BYTES:+"$INITRD_BYTES"} >&2
sh tests/fixtures/mirror/generate.sh "$WORK/mirror" --kernel "$OS/full/vmlinuz" \
  --initrd "$OS/full/initrd.cpio.gz" >"$WORK/mirror.sums"
MIRROR_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/mirror" "$MIRROR_PORT" >/dev/null 2>&1 &
MIRROR=$!
PIDS+=("$MIRROR")
SITE=$WORK/site
mkdir -p "$SITE"
cp -r templates payload "$SITE/"
{
  # The loaders are Debian's .deb files, pinned inside pxebuild.
  sed '/^\[\[node\]\]/,$d' site.toml
  for i in $(seq "$MAX"); do
    role=worker
    [ "$i" -le 3 ] && role=control-plane
    fw=bios
    [ $((i % 2)) = 0 ] && fw=uefi
    printf '[[node]]\nname = "n%d"\nmac = "52:54:00:30:%02x:%02x"\nip = "10.20.0.%d"\n' \
      "$i" $((i / 256)) $((i % 256)) $((10 + i))
    printf 'role = "%s"\ndisk = "/dev/disk/by-id/virtio-n%d-root"\nfirmware = "%s"\n\n' "$role" "$i" "$fw"
  done
} >"$SITE/site.toml"
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$MIRROR_PORT/" && break; sleep 0.1; done
echo "building a $MAX-node site ..." >&2
(cd "$SITE" && PXEBUILD_CACHE="$WORK/cache" PXEBUILD_MIRROR="http://127.0.0.1:$MIRROR_PORT" \
  PXEBUILD_SIGNING_KEY="$ROOT/tests/fixtures/mirror/test-key.pub.asc" "$BIN" -q build) >&2
kill "$MIRROR" 2>/dev/null || true
wait "$MIRROR" 2>/dev/null || true
rm -rf "$WORK/mirror" "$WORK/cache"
DIST=$SITE/dist
# One line per node: name ip mac firmware kernel-path initrd-path ignition-path.
python3 - "$DIST" >"$WORK/nodes" <<'PY'
import json, os, sys
dist = sys.argv[1]
m = json.load(open(os.path.join(dist, "manifest.json")))
def find(name):
    for d, _, files in os.walk(os.path.join(dist, "http", "flatcar")):
        if name in files:
            return os.path.relpath(os.path.join(d, name), os.path.join(dist, "http"))
    sys.exit(f"bootstorm: {name} not in the tree")
kernel = find("flatcar_production_pxe.vmlinuz")
initrd = find("flatcar_production_pxe_image.cpio.gz")
ign = {a["node"]: a["path"][len("http/"):] for a in m["access"] if a["path"].endswith("/install.ign")}
for n in m["nodes"]:
    # The site gives odd nodes BIOS firmware, even ones UEFI.
    firmware = "bios" if int(n["name"][1:]) % 2 else "uefi"
    print(n["name"], n["ip"], n["mac"].replace(":", "-").lower(), firmware, kernel, initrd, ign[n["name"]])
PY
[ "$(wc -l <"$WORK/nodes")" = "$MAX" ] || { echo "bootstorm: the manifest does not list $MAX nodes" >&2; exit 1; }
KERNEL_SIZE=$(stat -c %s "$DIST/http/$(awk 'NR == 1 { print $5 }' "$WORK/nodes")")
INITRD_SIZE=$(stat -c %s "$DIST/http/$(awk 'NR == 1 { print $6 }' "$WORK/nodes")")

# --- the network: the servers' namespace holds the bridge; one per client ----
SERVER=10.20.0.2
ip netns add "$SRV"
NSES+=("$SRV")
ip -n "$SRV" link set lo up
ip -n "$SRV" link add br0 type bridge
ip -n "$SRV" addr add "$SERVER/24" dev br0
ip -n "$SRV" link set br0 up
i=0
while read -r name ip _; do
  i=$((i + 1))
  ns=$TAG-$i
  ip netns add "$ns"
  NSES+=("$ns")
  ip -n "$SRV" link add "p$i" type veth peer name eth0 netns "$ns"
  ip -n "$SRV" link set "p$i" master br0 up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done <"$WORK/nodes"
echo "network: $MAX client namespaces on a bridge in $SRV" >&2
# Warm-up, so that the first server measured pays for nothing the others do
# not: every client resolves the server's address, the tree is in page cache.
PINGS=()
for i in $(seq "$MAX"); do
  # One datagram to the discard port makes the client resolve the address.
  ip netns exec "$TAG-$i" bash -c "echo >/dev/udp/$SERVER/9; sleep 0.5" >/dev/null 2>&1 &
  PINGS+=($!)
done
for pid in "${PINGS[@]}"; do wait "$pid" || true; done
find "$DIST" -type f -exec cat {} + >/dev/null

# One client: the firmware's and loader's fetches in order; one result line.
cat >"$WORK/client.sh" <<'CLIENT'
#!/usr/bin/env bash
# client.sh OUT GET HGET SERVER TRIES name ip mac firmware kernel initrd ignition
out=$1 get=$2 hget=$3 server=$4 tries=$5 mac=$8 fw=$9 kernel=${10} initrd=${11} ign=${12}
if [ "$fw" = bios ]; then
  files=(lpxelinux.0 ldlinux.c32 "pxelinux.cfg/01-$mac"); opts=(--blksize 1432 --tsize)
else
  files=(efi64/syslinux.efi efi64/ldlinux.e64 "efi64/pxelinux.cfg/01-$mac")
  opts=(--blksize 1468 --windowsize 4 --tsize)
fi
failed=-
for f in "${files[@]}"; do
  "$get" "$server:69" "$f" "${opts[@]}" --request-tries "$tries" >/dev/null 2>>"$out.err" || { failed=$f; break; }
done
if [ "$failed" = - ]; then
  for p in "$kernel" "$initrd" "$ign"; do
    "$hget" "$server:8080" "$p" >/dev/null 2>>"$out.err" || { failed=$p; break; }
  done
fi
echo "$(date +%s.%N) $failed" >"$out"
CLIENT
chmod +x "$WORK/client.sh"

# --- servers --------------------------------------------------------------------
SX="ip netns exec $SRV"
start_server() { # name -> PIDs of the server processes in SERVER_PIDS
  SERVER_PIDS=()
  case $1 in
    pxebuild)
      local log=(--no-log-file)
      [ -z "${KEEP_LOGS:-}" ] || log=(--log "$KEEP_LOGS/pxebuild-$(date +%s).log")
      $SX "$BIN" -q serve "$DIST" --listen "$SERVER" --http-port 8080 --tftp-port 69 \
        "${log[@]}" 2>"$WORK/pxe.err" &
      SERVER_PIDS+=($!)
      for _ in $(seq 600); do grep -q '^tftp listening' "$WORK/pxe.err" && break; sleep 0.1; done
      ;;
    nginx-*)
      cat >"$WORK/nginx.conf" <<CONF
user root;
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30;
  default_type application/octet-stream;
  server { listen $SERVER:8080; root $DIST/http; }
}
CONF
      $SX nginx -c "$WORK/nginx.conf" -p "$WORK" &
      SERVER_PIDS+=($!)
      if [ "$1" = nginx-tftpd ]; then
        $SX in.tftpd -L -u root -s "$DIST/tftp" -a "$SERVER:69" &
      else
        $SX dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp \
          --tftp-root="$DIST/tftp" --listen-address="$SERVER" --bind-interfaces \
          --tftp-max=1000 --user=root --pid-file= --quiet-tftp --log-facility="$WORK/dnsmasq.log" &
      fi
      SERVER_PIDS+=($!)
      ;;
    *) echo "bootstorm: unknown server $1" >&2; exit 2 ;;
  esac
  PIDS+=("${SERVER_PIDS[@]}")
  for _ in $(seq 300); do
    $SX curl -s -o /dev/null "http://$SERVER:8080/" && break
    sleep 0.1
  done
  sleep 1 # the TFTP servers print nothing when ready
}
# The servers' processes and their children (nginx workers), as PIDs.
server_tree() {
  local pid
  for pid in "$@"; do
    echo "$pid"
    pgrep -P "$pid" || true
  done
}
# CPU seconds of the server processes, with the children they reaped
# (tftpd-hpa forks one per transfer).
cpu_seconds() {
  local pid total=0 ticks
  ticks=$(getconf CLK_TCK)
  for pid in $(server_tree "$@"); do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 + $14 + $15 }')))
  done
  awk -v t="$total" -v k="$ticks" 'BEGIN { printf "%.1f", t / k }'
}
# Peak RSS in MB, summed over the long-lived server processes.
peak_rss() {
  local pid kb=0
  for pid in $(server_tree "$@"); do
    kb=$((kb + $(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'
}
stop_server() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# UDP datagrams dropped on receive in a namespace (InErrors, which counts
# full receive buffers, RcvbufErrors, too).
udp_drops() {
  ip netns exec "$1" awk '/^Udp:/ { if (h) { print $4; exit } h = 1 }' /proc/net/snmp
}
# The same, summed over the first N client namespaces.
client_udp_drops() {
  local i total=0
  for i in $(seq "$1"); do total=$((total + $(udp_drops "$TAG-$i"))); done
  echo "$total"
}

# --- the storm -----------------------------------------------------------------
storm() { # server N round -> "p50 p99 failures resent drops cpu rss"
  local server=$1 n=$2 i=0 start cpu0 res=$WORK/res-$1-$2-$3 sdrops0 cdrops0
  mkdir -p "$res"
  start_server "$server"
  sdrops0=$(udp_drops "$SRV")
  cdrops0=$(client_udp_drops "$n")
  cpu0=$(cpu_seconds "${SERVER_PIDS[@]}")
  start=$(date +%s.%N)
  while read -r name ip mac fw kernel initrd ign; do
    i=$((i + 1))
    [ "$i" -le "$n" ] || break
    timeout "$CLIENT_TIMEOUT" ip netns exec "$TAG-$i" "$WORK/client.sh" "$res/$i" "$GET" "$HGET" "$SERVER" "$REQUEST_TRIES" \
      "$name" "$ip" "$mac" "$fw" "$kernel" "$initrd" "$ign" &
  done <"$WORK/nodes"
  wait_clients
  local cpu rss
  cpu=$(awk -v a="$(cpu_seconds "${SERVER_PIDS[@]}")" -v b="$cpu0" 'BEGIN { printf "%.1f", a - b }')
  rss=$(peak_rss "${SERVER_PIDS[@]}")
  local drops resent
  drops="$(($(udp_drops "$SRV") - sdrops0)) / $(($(client_udp_drops "$n") - cdrops0))"
  # Requests answered only after a resend, and the slowest answer.
  resent=$(cat "$res"/*.err 2>/dev/null | awk '/answered after/ { c++; t = $(NF - 1) + 0; if (t > m) m = t }
    END { if (c) printf "%d (%.1f s)", c, m; else print 0 }')
  grep -h '^warning' "$WORK/pxe.err" 2>/dev/null | sort | uniq -c | sort -rn | head -5 >&2 || true
  stop_server
  # A client that timed out wrote no result: it failed too.
  local failures
  failures=$(results "$res" | awk '$2 != "-"' | wc -l)
  failures=$((failures + n - $(results "$res" | wc -l)))
  [ -z "${KEEP_LOGS:-}" ] || cp -r "$res" "$KEEP_LOGS/"
  if [ "$failures" -gt 0 ]; then
    echo "$server, N=$n: $failures failed; first errors:" >&2
    cat "$res"/*.err 2>/dev/null | grep -v 'answered after' | sort | uniq -c | sort -rn | head -5 >&2
  fi
  local pcts
  pcts=$(results "$res" | awk -v s="$start" '$2 == "-" { print $1 - s }' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
      p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99 + 0.5) + 1]
      printf "%.1f %.1f\n", p50, p99 }')
  echo "$pcts|$failures|$resent|$drops|$cpu|$rss"
}
results() { find "$1" -type f ! -name '*.err' -exec cat {} +; }
wait_clients() {
  local pid
  for pid in $(jobs -p); do
    case " ${PIDS[*]} " in *" $pid "*) ;; *) wait "$pid" || true ;; esac
  done
}

label() {
  case $1 in
    pxebuild) echo "pxebuild serve" ;;
    nginx-tftpd) echo "nginx + tftpd-hpa" ;;
    nginx-dnsmasq) echo "nginx + dnsmasq TFTP" ;;
  esac
}
# The servers in round R's order: the list rotated left by R - 1.
rotated() {
  local -a list=($SERVERS)
  local k=$((($1 - 1) % ${#list[@]}))
  echo "${list[@]:k}" "${list[@]:0:k}"
}
ROWS=()
for n in "${COUNTS[@]}"; do
  for round in $(seq "$ROUNDS"); do
    for server in $(rotated "$round"); do
      echo "storm: $(label "$server"), N=$n, round $round of $ROUNDS ..." >&2
      IFS='|' read -r pcts failures resent drops cpu rss < <(storm "$server" "$n" "$round")
      read -r p50 p99 <<<"$pcts"
      ROWS+=("$n|$round|$server|$p50|$p99|$failures|$resent|$drops|$cpu|$rss")
    done
  done
done

# --- the table -----------------------------------------------------------------
echo
echo "Boot storm ($(date -u +%Y-%m-%d), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)):" \
  "each client TFTPs loader, ldlinux and its config, then HTTPs a $((KERNEL_SIZE >> 20)) MiB kernel," \
  "a $((INITRD_SIZE >> 20)) MiB initrd and its Ignition; release build $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
echo
echo "Every storm:"
echo
echo "| N | round | server | p50 (s) | p99 (s) | failures | TFTP requests resent (slowest answer) | UDP receive drops (server / clients) | server CPU (s) | server peak RSS (MB) | p99 vs the round's best peer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# pxebuild's p99 over the best peer's of the same N and round.
paired() { # N round p99
  local best
  best=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' -v n="$1" -v r="$2" '$1 == n && $2 == r && $3 != "pxebuild" && $5 != "-" { print $5 }' | sort -g | head -1)
  if [ -n "$best" ] && [ "$3" != - ]; then awk -v a="$3" -v b="$best" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}
for row in "${ROWS[@]}"; do
  IFS='|' read -r n round server p50 p99 failures resent drops cpu rss <<<"$row"
  ratio=-
  [ "$server" != pxebuild ] || { ratio=$(paired "$n" "$round" "$p99"); [ "$ratio" = - ] || ratio=${ratio}x; }
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$round" "$(label "$server")" "$p50" "$p99" \
    "$failures" "$resent" "$drops" "$cpu" "$rss" "$ratio"
done
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "Medians over $ROUNDS rounds:"
echo
echo "| N | server | p50 (s) | p99 (s) | failures (all rounds) | server CPU (s) | server peak RSS (MB, highest) | p99 vs best peer (median of the rounds' ratios) |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${COUNTS[@]}"; do
  for server in $SERVERS; do
    mine=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' -v n="$n" -v s="$server" '$1 == n && $3 == s')
    col() { cut -d'|' -f"$1" <<<"$mine" | grep -v '^-$' | median; }
    failures=$(cut -d'|' -f6 <<<"$mine" | awk '{ t += $1 } END { print t }')
    rss=$(cut -d'|' -f10 <<<"$mine" | sort -g | tail -1)
    ratio=-
    if [ "$server" = pxebuild ]; then
      ratio=$(while IFS='|' read -r rn rr _ _ rp99 _; do paired "$rn" "$rr" "$rp99"; echo; done <<<"$mine" | grep -v '^-*$' | median)
      [ "$ratio" = - ] || ratio=${ratio}x
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$(label "$server")" "$(col 4)" "$(col 5)" \
      "$failures" "$(col 9)" "$rss" "$ratio"
  done
done
echo
echo "Goals at N = 200: no failure; pxebuild's p99 <= 0.80x the best peer's; pxebuild's RSS < 64 MB."
