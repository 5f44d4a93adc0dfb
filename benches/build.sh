#!/usr/bin/env bash
# Build benchmark: sites of 10, 100 and 1000 nodes built against the fixture
# mirror (artifacts fetched once, then cached). For each size it prints the
# wall time and peak RSS of: a full build (artifacts cached, nothing rendered
# yet), a no-op rebuild, a rebuild after one node's MAC changed, and one after
# another node's MAC changed (the steady state: the tree swapped out by the
# previous build is reused as the next staging tree).
# Goals on a 2-core machine: 1000 nodes full < 3 s, no-op < 0.1 s, one node
# changed < 0.3 s. Figures, never assertions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -q
bin=$root/target/release/pxebuild
work=$(mktemp -d)
server=''
trap '[[ -n "$server" ]] && kill "$server"; rm -rf "$work"' EXIT

tests/fixtures/mirror/generate.sh "$work/mirror" >/dev/null
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/mirror" >"$work/mirror.log" 2>&1 &
server=$!
port=''
for _ in $(seq 100); do
    port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/mirror.log" | head -1)
    [[ -n "$port" ]] && break
    sleep 0.1
done
export PXEBUILD_MIRROR="http://127.0.0.1:$port"
export PXEBUILD_SIGNING_KEY="$root/tests/fixtures/mirror/test-key.pub.asc"
export PXEBUILD_CACHE="$work/cache"

# site N: the example site's settings with N nodes in 10.20.0.0/16.
make_site() {
    local n=$1 dir=$2
    mkdir -p "$dir"
    ln -sfn "$root/templates" "$dir/templates"
    ln -sfn "$root/payload" "$dir/payload"
    sed -e '/^\[\[node\]\]/,$d' -e 's|10.20.0.0/24|10.20.0.0/16|' "$root/site.toml" > "$dir/site.toml"
    for ((i = 1; i <= n; i++)); do
        local role=worker
        ((i <= 3)) && role=control-plane
        printf '[[node]]\nname = "n%d"\nmac = "52:54:%02x:%02x:%02x:%02x"\nip = "10.20.%d.%d"\nrole = "%s"\ndisk = "/dev/disk/by-id/virtio-n%d"\n\n' \
            "$i" $((i >> 24 & 255)) $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255)) \
            $((1 + i / 250)) $((i % 250 + 3)) "$role" "$i" >> "$dir/site.toml"
    done
}

measure() { # prints "seconds peak-MB"
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" -q --site "$1/site.toml" build --out "$1/dist" >/dev/null 2>"$work/stderr"
    awk '{printf "%6.2f s %6.1f MB", $1, $2/1024}' "$work/time"
}

# Warm the artifact cache once (not measured).
make_site 3 "$work/warm"
"$bin" -q --site "$work/warm/site.toml" build --out "$work/warm/dist"

printf '%-6s | %-20s | %-20s | %-20s | %-20s\n' nodes "full build" "no-op rebuild" "one node changed" "another node changed"
for n in 10 100 1000; do
    dir="$work/site-$n"
    make_site "$n" "$dir"
    full=$(measure "$dir")
    noop=$(measure "$dir")
    sed -i '0,/mac = "52:54:00:00:00:05"/s//mac = "52:54:00:00:ff:05"/' "$dir/site.toml"
    one=$(measure "$dir")
    sed -i '0,/mac = "52:54:00:00:00:06"/s//mac = "52:54:00:00:ff:06"/' "$dir/site.toml"
    next=$(measure "$dir")
    printf '%-6s | %-20s | %-20s | %-20s | %-20s\n' "$n" "$full" "$noop" "$one" "$next"
done
