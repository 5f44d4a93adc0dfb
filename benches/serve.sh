#!/usr/bin/env bash
# Benchmarks `pxebuild serve` against Debian's peers, side by side in one run,
# on loopback: nginx (sendfile on) for HTTP; tftpd-hpa and dnsmasq for TFTP.
# Prints a Markdown table (docs/serve.md carries the last one) and pxebuild's
# peak RSS. Not a test: numbers depend on the machine; goals are in the table.
#
# Usage: benches/serve.sh            (RUNS=3 by default; median per cell)
#        RUNS=1 HTTP_MB=64 benches/serve.sh   (quicker)
# Needs: curl, atftp, cargo (for benches/tftp_get.rs and http_get.rs), nginx, in.tftpd (tftpd-hpa), dnsmasq, iproute2, and root
# for dnsmasq only: its TFTP port is fixed at 69, so it runs in a private network
# namespace the script creates and deletes (nothing on the host's port 69).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
HTTP_MB=${HTTP_MB:-256}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN=$TARGET/release/pxebuild
# The bench's own clients (benches/tftp_get.rs, benches/http_get.rs): atftp's
# per-block wakeups and curl's copies cap a fast server, so the rows are
# measured with both.
bench_bin() {
  cargo bench --bench "$1" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p'
}
GET=$(bench_bin tftp_get)
HGET=$(bench_bin http_get)
# A reference HTTP server (benches/sendfile_ref.rs): one thread per connection
# and sendfile, nothing else; the kind of server the HTTP goals were set against.
REF=$(bench_bin sendfile_ref)
[ -x "$GET" ] && [ -x "$HGET" ] && [ -x "$REF" ] || { echo "could not build the bench clients" >&2; exit 1; }

WORK=$(mktemp -d /tmp/pxebuild-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers and tftpd-hpa read as nobody
NS=pxebench$$
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { # $1: 1 = TCP, 2 = UDP
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,int(sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.1f", b / (e - s) / 1e6 }'; }
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

# --- the tree -----------------------------------------------------------------
mkdir -p "$WORK/dist/http" "$WORK/dist/tftp"
head -c $((HTTP_MB << 20)) /dev/urandom >"$WORK/dist/http/big.img"
head -c $((1 << 20)) /dev/urandom >"$WORK/dist/tftp/1m.img"
head -c $((64 << 20)) /dev/urandom >"$WORK/dist/tftp/64m.img"
head -c $((16 << 20)) /dev/urandom >"$WORK/dist/tftp/16m.img"
echo '{"format": 1, "inputs": "00", "files": [], "nodes": [], "access": []}' >"$WORK/dist/manifest.json"

# --- servers ------------------------------------------------------------------
"$BIN" -q serve "$WORK/dist" --listen 127.0.0.1 --http-port 0 --tftp-port 0 --no-log-file \
  2>"$WORK/pxe.err" &
PXE=$!
PIDS+=("$PXE")
for _ in $(seq 300); do grep -q '^tftp listening' "$WORK/pxe.err" && break; sleep 0.1; done
PXE_HTTP=$(sed -n 's/^http listening on .*:\([0-9]*\)$/\1/p' "$WORK/pxe.err")
PXE_TFTP=$(sed -n 's/^tftp listening on .*:\([0-9]*\)$/\1/p' "$WORK/pxe.err")

NGINX_PORT=$(free_port 1)
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/dist/http; }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)

"$REF" "$WORK/dist/http" --port 0 >"$WORK/ref.out" &
PIDS+=($!)
for _ in $(seq 300); do grep -q '^listening' "$WORK/ref.out" && break; sleep 0.1; done
REF_PORT=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$WORK/ref.out")

HPA_PORT=$(free_port 2)
in.tftpd -L -s "$WORK/dist/tftp" -a "127.0.0.1:$HPA_PORT" &
PIDS+=($!)

HAVE_DNSMASQ=0
if [ "$(id -u)" = 0 ] && ip netns add "$NS" 2>/dev/null; then
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp \
    --tftp-root="$WORK/dist/tftp" --listen-address=127.0.0.1 --bind-interfaces \
    --tftp-max=200 --user=root --pid-file= --quiet-tftp --log-facility="$WORK/dnsmasq.log" &
  PIDS+=($!)
  HAVE_DNSMASQ=1
fi

wait_tcp() { for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.1; done; }
wait_tcp "$PXE_HTTP"
wait_tcp "$NGINX_PORT"
wait_tcp "$REF_PORT"
sleep 1 # tftpd-hpa and dnsmasq print nothing when ready; give them a moment

# --- load generators ----------------------------------------------------------
# http PORT CLIENTS FETCHES_EACH -> MB/s
http_load() {
  local port=$1 clients=$2 each=$3 size start end urls=() i
  size=$(stat -c %s "$WORK/dist/http/big.img")
  for i in $(seq "$each"); do urls+=(-o /dev/null "http://127.0.0.1:$port/big.img"); done
  start=$(now)
  for i in $(seq "$clients"); do curl -s --fail "${urls[@]}" & done
  wait_clients
  end=$(now)
  mbps $((size * clients * each)) "$start" "$end"
}
# tftp PREFIX PORT FILE CLIENTS OPTIONS... -> MB/s
tftp_load() {
  local prefix=$1 port=$2 file=$3 clients=$4 size start end i
  shift 4
  local opts=()
  for o in "$@"; do opts+=(--option "$o"); done
  size=$(stat -c %s "$WORK/dist/tftp/$file")
  start=$(now)
  for i in $(seq "$clients"); do
    $prefix atftp -g -r "$file" -l /dev/null "${opts[@]}" 127.0.0.1 "$port" >/dev/null 2>&1 &
  done
  wait_clients
  end=$(now)
  mbps $((size * clients)) "$start" "$end"
}
# get PREFIX PORT FILE CLIENTS BLKSIZE WINDOWSIZE -> MB/s (tftp_get)
get() {
  $1 "$GET" "127.0.0.1:$2" "$3" --clients "$4" --blksize "$5" --windowsize "$6" | cut -d' ' -f1
}
# Waits for the background clients only (the servers are background jobs too).
wait_clients() {
  local pid
  for pid in $(jobs -p); do
    case " ${PIDS[*]} " in *" $pid "*) ;; *) wait "$pid" || echo "client $pid failed" >&2 ;; esac
  done
}
med() { # med CMD... -> median of RUNS runs
  local vals=() i
  for i in $(seq "$RUNS"); do vals+=("$("$@")"); done
  echo "${vals[*]}" | median
}

NSX="ip netns exec $NS"
row() { # name, pxebuild, peer, dnsmasq, goal
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$5"
}

echo "pxebuild bench: $(nproc) CPUs, RUNS=$RUNS, $(uname -r)" >&2
echo
echo "| test (loopback, MB/s) | pxebuild | nginx / tftpd-hpa | dnsmasq | pxebuild vs peer | goal |"
echo "|---|---|---|---|---|---|"
# Each HTTP cell: pxebuild, nginx and the reference in turn, RUNS times, so
# the three see the same machine; medians per server. The order rotates each
# round: whichever server ran right after another measured faster in a fixed
# order (a 20% lead for the reference in one series, none once rotated).
http3() { # FUNCTION CLIENTS FETCHES_EACH -> "pxebuild nginx reference" medians
  local p=() n=() r=() i server
  for i in $(seq "$RUNS"); do
    for server in $(printf '%s\n' pxe nginx ref pxe nginx | tail -n +$((i % 3 + 1)) | head -3); do
      case $server in
        pxe) p+=("$("$1" "$PXE_HTTP" "$2" "$3")") ;;
        nginx) n+=("$("$1" "$NGINX_PORT" "$2" "$3")") ;;
        ref) r+=("$("$1" "$REF_PORT" "$2" "$3")") ;;
      esac
    done
  done
  echo "$(echo "${p[*]}" | median) $(echo "${n[*]}" | median) $(echo "${r[*]}" | median)"
}
# hget PORT CLIENTS FETCHES_EACH -> MB/s (http_get, bodies spliced to /dev/null)
hget() { "$HGET" "127.0.0.1:$1" big.img --clients "$2" --repeat "$3"; }
for port in "$PXE_HTTP" "$NGINX_PORT" "$REF_PORT"; do
  "$HGET" "127.0.0.1:$port" big.img --clients 2 --verify "$WORK/dist/http/big.img" >/dev/null
done
read -r PXE_C1 NGX_C1 REF_C1 < <(http3 http_load 1 4)
read -r PXE_C32 NGX_C32 REF_C32 < <(http3 http_load 32 1)
read -r PXE_H1 NGX_H1 REF_H1 < <(http3 hget 1 4)
read -r PXE_H32 NGX_H32 REF_H32 < <(http3 hget 32 1)
row "HTTP, 1 client, ${HTTP_MB} MiB x4 (curl)" "$PXE_C1" "$NGX_C1" "-" ">= 0.95x"
row "HTTP, 32 clients, ${HTTP_MB} MiB each (curl)" "$PXE_C32" "$NGX_C32" "-" ">= 1.2x"
row "HTTP, 1 client, ${HTTP_MB} MiB x4 (http_get)" "$PXE_H1" "$NGX_H1" "-" ">= 0.95x"
row "HTTP, 32 clients, ${HTTP_MB} MiB each (http_get)" "$PXE_H32" "$NGX_H32" "-" ">= 1.2x"
dns() { if [ "$HAVE_DNSMASQ" = 1 ]; then med tftp_load "$NSX" 69 "$@"; else echo "-"; fi; }
row "TFTP, 64 x 1 MiB at once, blksize 1468 (atftp)" \
  "$(med tftp_load "" "$PXE_TFTP" 1m.img 64 'blksize 1468')" \
  "$(med tftp_load "" "$HPA_PORT" 1m.img 64 'blksize 1468')" \
  "$(dns 1m.img 64 'blksize 1468')" "-"
row "TFTP, 64 MiB, blksize 1468, windowsize 1 (atftp)" \
  "$(med tftp_load "" "$PXE_TFTP" 64m.img 1 'blksize 1468' 'windowsize 1')" \
  "$(med tftp_load "" "$HPA_PORT" 64m.img 1 'blksize 1468' 'windowsize 1')" \
  "$(dns 64m.img 1 'blksize 1468' 'windowsize 1')" ">= 1.0x"
row "TFTP, 64 MiB, blksize 1468, windowsize 16 (atftp)" \
  "$(med tftp_load "" "$PXE_TFTP" 64m.img 1 'blksize 1468' 'windowsize 16')" \
  "$(med tftp_load "" "$HPA_PORT" 64m.img 1 'blksize 1468' 'windowsize 16')" \
  "$(dns 64m.img 1 'blksize 1468' 'windowsize 16')" ">= 8x"
row "TFTP, 8 x 16 MiB at once, blksize 1468, windowsize 16 (atftp)" \
  "$(med tftp_load "" "$PXE_TFTP" 16m.img 8 'blksize 1468' 'windowsize 16')" \
  "$(med tftp_load "" "$HPA_PORT" 16m.img 8 'blksize 1468' 'windowsize 16')" \
  "$(dns 16m.img 8 'blksize 1468' 'windowsize 16')" ">= 2.5x"
if [ "$HAVE_DNSMASQ" = 1 ]; then dget() { med get "$NSX" 69 "$@"; }; else dget() { echo "-"; }; fi
# A correctness pass first: the bench client checks every byte it got.
for port in "$PXE_TFTP" "$HPA_PORT"; do
  "$GET" "127.0.0.1:$port" 16m.img --clients 2 --blksize 1468 --windowsize 16 \
    --verify "$WORK/dist/tftp/16m.img" >/dev/null
done
tget() { # row name, file, clients, blksize, windowsize, goal
  row "$1 (tftp_get)" "$(med get "" "$PXE_TFTP" "$2" "$3" "$4" "$5")" \
    "$(med get "" "$HPA_PORT" "$2" "$3" "$4" "$5")" "$(dget "$2" "$3" "$4" "$5")" "$6"
}
tget "TFTP, 64 x 1 MiB at once, blksize 1468" 1m.img 64 1468 1 "-"
tget "TFTP, 64 MiB, blksize 1468, windowsize 1" 64m.img 1 1468 1 ">= 1.0x"
tget "TFTP, 64 MiB, blksize 1468, windowsize 16" 64m.img 1 1468 16 ">= 8x"
tget "TFTP, 8 x 16 MiB at once, blksize 1468, windowsize 16" 16m.img 8 1468 16 ">= 2.5x"
echo
echo "Reference: the minimal sendfile server (benches/sendfile_ref.rs) in the same runs."
echo
echo "| test (loopback, MB/s) | reference | nginx | reference vs nginx | pxebuild vs reference |"
echo "|---|---|---|---|---|"
refrow() { # name, reference, nginx, pxebuild
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$(ratio "$4" "$2")"
}
refrow "HTTP, 1 client, ${HTTP_MB} MiB x4 (curl)" "$REF_C1" "$NGX_C1" "$PXE_C1"
refrow "HTTP, 32 clients, ${HTTP_MB} MiB each (curl)" "$REF_C32" "$NGX_C32" "$PXE_C32"
refrow "HTTP, 1 client, ${HTTP_MB} MiB x4 (http_get)" "$REF_H1" "$NGX_H1" "$PXE_H1"
refrow "HTTP, 32 clients, ${HTTP_MB} MiB each (http_get)" "$REF_H32" "$NGX_H32" "$PXE_H32"
echo
echo "pxebuild peak RSS: $(awk '/VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$PXE/status") (goal: under 30 MB)"
