#!/usr/bin/env bash
# The functions benchmark: wrk on loopback against the gateway (`cargo uk serve`) with
# examples/functions, for `hello` (GET /hello) and the JSON function `stats` (POST /stats),
# in each mode (fresh, snapshot, warm) at each concurrency (1, 8, 64): requests/s, latency
# p50/p99/max, non-2xx answers, and the gateway's own split from its /metrics (mean setup =
# boot or restore, guest, and the rest = the gateway's overhead).
#
# Baselines in the same run, behind the same HTTP stack (hyper on tokio,
# benches/function-baseline): the same handlers as a warm in-process handler, and as a
# process spawned per request (CGI-like).
#
# Then what limits it: the guest's instructions per request and per boot (single-stepped on
# the monitor), restore versus boot time and memory per VM, and what the figures predict on
# hardware KVM, where guest code runs at native speed instead of this machine's ~1 us an
# instruction (nested, software-assisted KVM).
#
# Needs KVM, wrk, and the release build (made here). Environment: DURATION (seconds per
# run, default 10), CONCURRENCY (default "1 8 64"), MODES (default "fresh snapshot warm").
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-1 8 64}
MODES=${MODES:-fresh snapshot warm}

command -v wrk >/dev/null || { echo "functions.sh: needs wrk (apt-get install wrk)"; exit 1; }
[ -w /dev/kvm ] || { echo "functions.sh: the gateway needs KVM, and /dev/kvm is not usable here"; exit 1; }

cargo build --release -q -p runner -p function-baseline
RUNNER=$PWD/target/release/runner
BASELINE=$PWD/target/release/function-baseline
"$RUNNER" functions build examples/functions --quiet >/dev/null
MANIFEST=$PWD/examples/target/uk-functions/functions.json

WORK=$(mktemp -d /tmp/uk-functions-bench.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

BODY='{"numbers": [42, 7, 19, -3, 88, 5, 61, 23, 0, 14, 77, 36, 9, 50, 2, 31]}'
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF

# start_server LOG COMMAND...: starts a server that prints "listening on http://ADDRESS";
# sets SERVER_PID and URL.
start_server() {
    local log=$1
    shift
    "$@" >"$WORK/stdout" 2>"$log" &
    SERVER_PID=$!
    for _ in $(seq 600); do
        if grep -q "listening on" "$WORK/stdout" 2>/dev/null; then
            URL=$(sed -n 's/^listening on //p' "$WORK/stdout" | head -1)
            return
        fi
        sleep 0.1
    done
    echo "functions.sh: the server did not start:"; cat "$log"; exit 1
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# ms VALUE: wrk's "1.23ms", "456.00us", "1.20s" in milliseconds.
ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else printf "-" }'
}

# metric_means AFTER BEFORE FUNCTION MODE: "setup guest overhead", mean ms over the
# requests between the two scrapes of /metrics.
metric_means() {
    awk -v fn="$3" -v mode="$4" '
        BEGIN { split("setup guest total", names, " ") }
        {
            after = FILENAME == ARGV[1]
            for (i = 1; i <= 3; i++) {
                phase = names[i]
                if (!index($0, "function=\"" fn "\"") || !index($0, "mode=\"" mode "\"") || !index($0, "phase=\"" phase "\"")) continue
                if ($1 ~ /_sum\{/) sum[phase, after] = $2
                if ($1 ~ /_count\{/) count[phase, after] = $2
            }
        }
        END {
            for (i = 1; i <= 3; i++) {
                phase = names[i]
                n = count[phase, 1] - count[phase, 0]
                mean[phase] = n > 0 ? (sum[phase, 1] - sum[phase, 0]) / n * 1000 : 0
            }
            printf "%.2f %.2f %.2f", mean["setup"], mean["guest"], mean["total"] - mean["setup"] - mean["guest"]
        }' "$1" "$2"
}

printf '%-9s %-8s %-5s %9s %9s %9s %9s %7s   %s\n' what function conc req/s p50_ms p99_ms max_ms non2xx "gateway split, mean ms (setup guest overhead)"

# run_wrk LABEL FUNCTION PATH CONCURRENCY [MODE]: one wrk run, one line.
run_wrk() {
    local label=$1 function=$2 path=$3 conc=$4 mode=${5:-}
    local threads=2 script=()
    [ "$conc" -lt 2 ] && threads=1
    [ "$function" = stats ] && script=(-s "$WORK/post.lua")
    [ -n "$mode" ] && curl -s "$URL/metrics" >"$WORK/before"
    wrk -t"$threads" -c"$conc" -d"${DURATION}s" --timeout 10s --latency "${script[@]}" "$URL$path" >"$WORK/wrk" 2>&1 || true
    local rps p50 p99 max non2xx split="-"
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/wrk")
    p50=$(ms "$(awk '$1 == "50%" {print $2}' "$WORK/wrk")")
    p99=$(ms "$(awk '$1 == "99%" {print $2}' "$WORK/wrk")")
    max=$(ms "$(awk '$1 == "Latency" {print $4; exit}' "$WORK/wrk")")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk")
    if [ -n "$mode" ]; then
        curl -s "$URL/metrics" >"$WORK/after"
        split=$(metric_means "$WORK/after" "$WORK/before" "$function" "$mode")
    fi
    printf '%-9s %-8s %-5s %9s %9s %9s %9s %7s   %s\n' "$label" "$function" "$conc" "${rps:--}" "$p50" "$p99" "$max" "${non2xx:-0}" "$split"
}

for mode in $MODES; do
    start_server "$WORK/gateway-$mode.log" "$RUNNER" serve "$MANIFEST" --listen 127.0.0.1:0 \
        --mode "$mode" --concurrency 64 --queue 4096 --pool 8 --idle 3600
    # The first request of each function takes its snapshot (or boots its warm VM).
    curl -s -o /dev/null "$URL/hello"
    curl -s -o /dev/null -X POST -d "$BODY" "$URL/stats"
    for function in hello stats; do
        for conc in $CONCURRENCY; do
            run_wrk "$mode" "$function" "/$function" "$conc" "$mode"
        done
    done
    stop_server
done

for baseline in inprocess cgi; do
    start_server "$WORK/baseline-$baseline.log" "$BASELINE" serve 127.0.0.1:0 "$baseline"
    for function in hello stats; do
        for conc in $CONCURRENCY; do
            run_wrk "$baseline" "$function" "/$function" "$conc"
        done
    done
    stop_server
done

echo
echo "What limits it (the guest's own instructions, single-stepped on the monitor; restore"
echo "versus boot for hello, debug build of the monitor):"
cargo test -q -p runner --test serve -- --ignored --nocapture --test-threads 1 \
    guest_instructions_per_request restore_versus_boot_time_and_memory 2>/dev/null \
    | grep -oE '(guest instructions|restore|boot): .*' | tee "$WORK/limits"
echo
echo "On hardware KVM guest code runs at native speed (~1 ns an instruction, not ~1 us):"
echo "the guest share of each request above shrinks by about the instruction count x 1 us,"
echo "and each VM exit (2 per request here) costs ~1-2 us instead of tens."
awk '/^guest instructions: hello/ {
    printf "hello: %d guest instructions per request = ~%.1f ms here at ~1 us each, ~%.3f ms on hardware\n", $7, $7 / 1000, $7 / 1e6 }
    /^guest instructions: stats/ {
    printf "stats: %d guest instructions per request = ~%.1f ms here at ~1 us each, ~%.3f ms on hardware\n", $7, $7 / 1000, $7 / 1e6 }' "$WORK/limits"
