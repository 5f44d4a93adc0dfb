#!/usr/bin/env bash
# Bench (not a test): time from QEMU start to the Ignition marker, per firmware
# path, with `pxebuild serve`, with nginx (HTTP) + dnsmasq (TFTP) and with
# nginx + tftpd-hpa serving the same dist/ tree, printed side by side.
# Goal: pxebuild within 5% of the peers.
#
# Usage: benches/lab.sh [--site FILE] [--dist DIR] [--runs N] [--bios NODE] [--uefi NODE]
#        [--pxebuild PATH]
# Defaults: ./site.toml, its dist/, 3 runs, the site's first BIOS and first UEFI
# node. VMs boot one at a time under TCG so the servers, not CPU contention,
# make the difference. Needs root, the lab's packages and python3.
set -euo pipefail

site=site.toml dist= runs=3 bios= uefi= pxebuild=${PXEBUILD:-pxebuild}
while [ $# -gt 0 ]; do
    case "$1" in
        --site) site=$2; shift ;;
        --dist) dist=$2; shift ;;
        --runs) runs=$2; shift ;;
        --bios) bios=$2; shift ;;
        --uefi) uefi=$2; shift ;;
        --pxebuild) pxebuild=$2; shift ;;
        *) echo "usage: $0 [--site FILE] [--dist DIR] [--runs N] [--bios NODE] [--uefi NODE] [--pxebuild PATH]" >&2; exit 2 ;;
    esac
    shift
done
dist=${dist:-$(dirname "$site")/dist}

# First node per firmware from the site file (firmware defaults to bios).
first_node() {
    python3 - "$site" "$1" <<'PY'
import sys, tomllib
site = tomllib.load(open(sys.argv[1], "rb"))
want = sys.argv[2]
for node in site.get("node", []):
    if node.get("firmware", "bios") == want:
        print(node["name"]); break
PY
}
bios=${bios:-$(first_node bios)}
uefi=${uefi:-$(first_node uefi)}

state=$(mktemp -d /tmp/pxebuild-lab-bench.XXXXXX)
trap 'rm -rf "$state"' EXIT

# One boot: prints the marker time in seconds, or "fail".
boot() { # server node
    "$pxebuild" -q --site "$site" lab run --accel tcg --dist "$dist" --state "$state/$1" \
        --server "$1" --nodes "$2" --parallel 1 >/dev/null 2>"$state/err" || {
        echo "$1 $2 failed: $(grep -v '^ ' "$state/err" | tail -2 | tr '\n' ' ')" >&2
        echo fail
        return
    }
    # Time to the marker, plus the time of any attempt the lab rebooted.
    python3 -c 'import json,re,sys
vm = json.load(open(sys.argv[1]))["vms"][0]
lost = sum(float(re.match(r"after ([0-9.]+) s", r).group(1)) for r in vm.get("retries", []))
print("%.2f" % (vm["reached"]["marker"] + lost))' "$state/$1/report.json"
}

median() { tr " " "\n" | { grep -v "^$" || true; } | sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# Median of the successful runs among the arguments.
median_of() { echo "$*" | tr ' ' '\n' | { grep -v fail || true; } | median; }
# pxebuild's median against a peer's, as a signed percentage.
versus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%+.1f%%", (a-b)/b*100; else print "n/a" }'; }

printf '%-6s %-10s %-30s %-30s %-30s %s\n' path node "pxebuild serve (median; runs)" \
    "nginx + dnsmasq (median; runs)" "nginx + tftpd-hpa (median; runs)" "pxebuild vs each peer"
for fw in bios uefi; do
    node=${!fw}
    [ -n "$node" ] || continue
    own=() dnsmasq=() tftpd=()
    for _ in $(seq "$runs"); do
        # Alternate the servers so drift on the host hits all alike.
        own+=("$(boot pxebuild "$node")")
        dnsmasq+=("$(boot nginx "$node")")
        tftpd+=("$(boot nginx-tftpd "$node")")
    done
    m_own=$(median_of "${own[*]}")
    m_dnsmasq=$(median_of "${dnsmasq[*]}")
    m_tftpd=$(median_of "${tftpd[*]}")
    printf '%-6s %-10s %-30s %-30s %-30s %s\n' "$fw" "$node" "$m_own s; ${own[*]}" \
        "$m_dnsmasq s; ${dnsmasq[*]}" "$m_tftpd s; ${tftpd[*]}" \
        "$(versus "$m_own" "$m_dnsmasq") / $(versus "$m_own" "$m_tftpd")"
done
