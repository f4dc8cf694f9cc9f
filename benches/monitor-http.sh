#!/usr/bin/env bash
# examples/http on the runner's KVM monitor against QEMU microvm, both on KVM, the same
# image in the same run; then the density of serving VMs on the monitor.
#
#   sudo benches/monitor-http.sh                    # all three parts, defaults below
#   sudo ROUNDS=5 DURATION=20 BOOTS=20 DENSITY=1000 benches/monitor-http.sh
#   sudo PARTS=density DENSITY=500 benches/monitor-http.sh
#
# 1. Throughput and latency (PARTS contains "wrk"): both VMs up at once, each booted by
#    `cargo uk boot --tap` (a tap device in a network namespace of the runner's own, the
#    guest at 10.0.2.15); wrk -t1 -c$CONNECTIONS -d$DURATION --latency runs inside each
#    namespace in turn for $ROUNDS rounds after a warm-up. Figures: the median over rounds
#    of requests/s, p50 and p99 latency, and the monitor/QEMU ratio.
# 2. Boot to the first answered request (PARTS contains "boot"): $BOOTS alternating boots
#    per VMM with user-mode networking and a port forward (passt for the monitor, QEMU's
#    own for QEMU), timed from starting the runner to the first HTTP 200 that curl gets
#    through the forward (polling every 2 ms). Figures: median, min, p90.
# 3. Density of serving VMs (PARTS contains "density"): $DENSITY http VMs on the monitor,
#    each a runner process, started $BATCH at a time, with DENSITY_NET=passt (default: its
#    own passt and forward) or DENSITY_NET=tap (its own namespace and tap device); then one
#    request to each. Figures: VMs that answered, boot rate, host memory per VM (PSS of
#    the runner and passt processes, and the drop of MemAvailable).
#
# This machine's /dev/kvm is nested KVM that emulates guest ring-0 code in software
# (DESIGN.md): the guest's own work (the TCP/IP stack, the handler) runs about a hundred
# times slower than on hardware KVM, while what the VMMs do on the host runs at full
# speed. Read the figures as "each VMM's overhead with a slow guest"; benches/README.md
# says what they predict on hardware KVM.
#
# Needs root (namespaces, tap devices), qemu-system-x86, passt, wrk and curl (installed
# with apt-get when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARTS=${PARTS:-wrk boot density}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
WARMUP=${WARMUP:-2}
BOOTS=${BOOTS:-10}
DENSITY=${DENSITY:-100}
BATCH=${BATCH:-25}
MEMORY=${MEMORY:-64}
DENSITY_NET=${DENSITY_NET:-passt}

[ "$(id -u)" = 0 ] || { echo "monitor-http.sh: needs root (network namespaces, tap devices)" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "monitor-http.sh: needs /dev/kvm" >&2; exit 1; }
for tool in wrk curl passt qemu-system-x86_64; do
    package=$tool
    [ "$tool" = qemu-system-x86_64 ] && package=qemu-system-x86
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
done

echo "== building (release)"
(cd "$ROOT" && cargo build -q --release -p runner)
(cd "$ROOT/examples" && cargo build -q --release -p http)
RUNNER="$ROOT/target/release/runner"
HTTP="$ROOT/examples/target/x86_64-unknown-none/release/http"
echo "image: $HTTP ($(stat -c %s "$HTTP") bytes)"
WORK=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median min p90 of the numbers on stdin
summary() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "no samples"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = v[int(NR * 0.9 + 0.999)]
        printf "median %.2f, min %.2f, p90 %.2f (n=%d)\n", m, v[1], p, NR }'
}

# Starts `runner boot` with the arguments after $1 (a log file) in the background.
start() {
    local log=$1
    shift
    "$RUNNER" boot --memory "$MEMORY" --timeout 3600 "$@" "$HTTP" >"$log" 2>&1 &
    pids+=($!)
}

wait_for() {
    local log=$1 needle=$2
    for _ in $(seq 1 15000); do
        grep -q "$needle" "$log" && return 0
        sleep 0.02
    done
    echo "no '$needle' in $log:" >&2
    cat "$log" >&2
    return 1
}

if [[ $PARTS == *wrk* ]]; then
    echo "== throughput: wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, both VMs up, each on a tap"
    declare -A ns
    for vmm in monitor qemu; do
        # --quiet would hide the namespace's name: these two say it.
        "$RUNNER" boot --vmm "$vmm" --accel kvm --tap --memory "$MEMORY" --timeout 3600 "$HTTP" \
            >"$WORK/$vmm.log" 2>&1 &
        pids+=($!)
        wait_for "$WORK/$vmm.log" "http: listening"
        ns[$vmm]=$(grep -o 'in namespace [^ ]*' "$WORK/$vmm.log" | head -1 | cut -d' ' -f3)
        ip netns exec "${ns[$vmm]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" http://10.0.2.15/ >/dev/null
    done
    for round in $(seq 1 "$ROUNDS"); do
        for vmm in monitor qemu; do
            ip netns exec "${ns[$vmm]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
                http://10.0.2.15/ >"$WORK/wrk-$vmm-$round"
            rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk-$vmm-$round")
            p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk-$vmm-$round")
            p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk-$vmm-$round")
            echo "round $round $vmm: $rps requests/s, p50 $p50, p99 $p99"
            echo "$rps" >>"$WORK/rps-$vmm"
        done
    done
    for vmm in monitor qemu; do
        echo "$vmm requests/s: $(summary <"$WORK/rps-$vmm")"
    done
    m=$(median <"$WORK/rps-monitor")
    q=$(median <"$WORK/rps-qemu")
    awk -v m="$m" -v q="$q" 'BEGIN { printf "monitor/QEMU requests/s: %.2f\n", m / q }'
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
fi

if [[ $PARTS == *boot* ]]; then
    echo "== boot to the first answered request, $BOOTS boots each, alternating"
    for i in $(seq 1 "$BOOTS"); do
        for vmm in monitor qemu; do
            port=$((20000 + RANDOM % 20000))
            t0=$(date +%s%N)
            "$RUNNER" boot --vmm "$vmm" --accel kvm --forward "$port:80" --memory "$MEMORY" \
                --timeout 120 --quiet "$HTTP" >"$WORK/boot.log" 2>&1 &
            pid=$!
            until curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/"; do
                kill -0 "$pid" 2>/dev/null || { cat "$WORK/boot.log" >&2; exit 1; }
                sleep 0.002
            done
            t1=$(date +%s%N)
            kill -TERM "$pid"
            wait "$pid" 2>/dev/null || true
            echo "$(( (t1 - t0) / 1000 ))" | awk '{ printf "%.2f\n", $1 / 1000 }' >>"$WORK/boot-$vmm"
        done
    done
    for vmm in monitor qemu; do
        echo "$vmm, ms from starting the runner to the first 200: $(summary <"$WORK/boot-$vmm")"
    done
fi

pss_kib() {
    local total=0 kib
    for pid in "$@"; do
        kib=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

if [[ $PARTS == *density* ]]; then
    echo "== density: $DENSITY serving http VMs on the monitor, each with its own $DENSITY_NET, $BATCH at a time"
    ulimit -n 1048576 2>/dev/null || true
    available_before=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
    t0=$(date +%s%N)
    for i in $(seq 0 $((DENSITY - 1))); do
        if [ "$DENSITY_NET" = tap ]; then
            start "$WORK/vm-$i.log" --vmm monitor --tap
        else
            start "$WORK/vm-$i.log" --vmm monitor --forward "$((30000 + i)):80"
        fi
        if (( (i + 1) % BATCH == 0 || i + 1 == DENSITY )); then
            for j in $(seq $((i + 1 - ((i % BATCH) + 1))) "$i"); do
                wait_for "$WORK/vm-$j.log" "http: listening"
            done
        fi
    done
    t1=$(date +%s%N)
    answered=0
    for i in $(seq 0 $((DENSITY - 1))); do
        if [ "$DENSITY_NET" = tap ]; then
            ns=$(grep -o 'in namespace [^ ]*' "$WORK/vm-$i.log" | head -1 | cut -d' ' -f3)
            code=$(ip netns exec "$ns" curl -s -o /dev/null -m 10 -w '%{http_code}' http://10.0.2.15/ || true)
        else
            code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$((30000 + i))/" || true)
        fi
        if [ "$code" = 200 ]; then
            answered=$((answered + 1))
        fi
    done
    available_after=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
    runners="${pids[*]}"
    passts=$(for pid in "${pids[@]}"; do pgrep -P "$pid" || true; done | tr '\n' ' ')
    # shellcheck disable=SC2086
    runner_pss=$(pss_kib $runners)
    # shellcheck disable=SC2086
    passt_pss=$(pss_kib $passts)
    awk -v n="$DENSITY" -v a="$answered" -v t="$(( (t1 - t0) / 1000000 ))" \
        -v r="$runner_pss" -v p="$passt_pss" -v d="$((available_before - available_after))" 'BEGIN {
        printf "VMs: %d started, %d answered a request; %.1f boots/s to listening\n", n, a, n / (t / 1000)
        printf "host memory per VM: runner PSS %.0f KiB + passt PSS %.0f KiB; MemAvailable fell %.0f KiB per VM (KVM and page tables included)\n", r / n, p / n, d / n }'
fi
