#!/usr/bin/env bash
# examples/http on the runner's KVM monitor against QEMU microvm, both on KVM, the same
# image in the same run; then the density of serving VMs on the monitor.
#
#   sudo benches/monitor-http.sh                    # all three parts, defaults below
#   sudo ROUNDS=5 DURATION=20 BOOTS=20 DENSITY=1000 benches/monitor-http.sh
#   sudo PARTS=density DENSITY=1000 DENSITY_BASELINE=50 benches/monitor-http.sh
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
#    each a runner process (`runner boot --vmm monitor`), started $BATCH at a time, each
#    waited for until it listens (adding stops at the first VM that does not come up or
#    below $DENSITY_RESERVE MiB of MemAvailable); with DENSITY_NET=tap (default: its own network namespace
#    and tap device, the guest at 10.0.2.15 in each) or DENSITY_NET=passt (its own passt
#    and a loopback forward). Once all listen, one request to each in start order, and
#    again after holding them all $HOLD s (all must still serve). Then the same for
#    $DENSITY_BASELINE VMs on QEMU microvm + KVM, same image and network, as the baseline.
#    Figures per VMM: VMs listening and the time to bring them all up, VMs that answered
#    each round with the latency of the first and last VM's request (median, p99, max),
#    host memory per VM (the drop of MemAvailable / N, which counts KVM's kernel memory,
#    page tables and namespaces, and the PSS of the VMM processes / N), whether any
#    namespace was left; then the QEMU/monitor ratios. kernel.pid_max is raised for the
#    run if N needs it and restored at its end.
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
DENSITY_NET=${DENSITY_NET:-tap}
DENSITY_BASELINE=${DENSITY_BASELINE:-50}
DENSITY_RESERVE=${DENSITY_RESERVE:-3072}
HOLD=${HOLD:-30}

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
# Whether $1 is still a child of this script. A runner that ended long ago may have left
# its pid to an unrelated process (2,000 VMs and their `ip` commands wrap a pid_max of
# 32,768), which must not be signalled; a zombie child is not running either.
ours() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    set -- $stat
    [ "$1" != Z ] && [ "$2" = "$$" ]
}

# Commands that put back what the run changed on the host (sysctls).
restore=()
# Every runner ends on SIGTERM and takes its VM, QEMU and namespace with it; one that has
# not ended after 60 s is killed, and `runner clean` deletes the namespaces of runners that
# are gone. Runs on every exit: the end, a failure, Ctrl-C.
cleanup() {
    local pid deadline=$((SECONDS + 60))
    trap - INT TERM
    for pid in "${pids[@]}"; do ours "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        while ours "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
        ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    "$RUNNER" clean >/dev/null 2>&1 || true
    for command in "${restore[@]}"; do $command || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

# Waits until $2 appears in log $1, for 5 minutes at most, or (given a pid $3) until that
# process is gone.
wait_for() {
    local log=$1 needle=$2 pid=${3:-}
    for _ in $(seq 1 15000); do
        grep -qs "$needle" "$log" && return 0
        if [ -n "$pid" ] && ! ours "$pid"; then
            grep -qs "$needle" "$log" && return 0
            break
        fi
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
    for pid in "${pids[@]}"; do ours "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
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
                ours "$pid" || { cat "$WORK/boot.log" >&2; exit 1; }
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
        kib=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

mem_available_kib() {
    awk '/MemAvailable/ { print $2 }' /proc/meminfo
}

# One request to each VM of the current set, in start order; each line of $1 is the VM's
# index, its HTTP status and curl's total time in ms (000 and the time waited if it failed).
request_each() {
    local out=$1 i code
    : >"$out"
    for i in "${!vm_pids[@]}"; do
        if [ "$DENSITY_NET" = tap ]; then
            code=$(ip netns exec "${vm_ns[$i]}" curl -s -o /dev/null -m 10 \
                -w '%{http_code} %{time_total}' http://10.0.2.15/ || true)
        else
            code=$(curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}' \
                "http://127.0.0.1:$((30000 + i))/" || true)
        fi
        echo "$i ${code:-000 0}" | awk '{ printf "%d %s %.2f\n", $1, $2, $3 * 1000 }' >>"$out"
    done
}

# "answered A of N; latency first VM F ms, last VM L ms, median M, p99 P, max X" for a
# file of request_each.
request_summary() {
    local first last
    first=$(head -1 "$1" | cut -d' ' -f3)
    last=$(tail -1 "$1" | cut -d' ' -f3)
    sort -g -k3 "$1" | awk -v f="$first" -v l="$last" '{ n++; if ($2 == 200) a++; t[n] = $3 } END {
        printf "answered %d of %d; ms: first VM %.1f, last VM %.1f, median %.1f, p99 %.1f, max %.1f",
            a, n, f, l, t[int((n + 1) / 2)], t[int(n * 0.99 + 0.999)], t[n] }'
}

# Stops the VMs of the current set and checks that nothing of them is left: no runner, no
# VMM child, no namespace.
stop_set() {
    local pid deadline
    left=0
    for pid in "${vm_pids[@]}"; do ours "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 120))
    for pid in "${vm_pids[@]}"; do
        while ours "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
        ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # After a SIGKILL the runner's namespace is left: `runner clean` removes those of
    # runners that are gone.
    "$RUNNER" clean >/dev/null 2>&1 || true
    for ns in "${vm_ns[@]}"; do
        [ -n "$ns" ] && [ -e "/run/netns/$ns" ] && left=$((left + 1))
    done
    vm_pids=()
    vm_ns=()
}

# Starts up to $2 http VMs on VMM $1, $BATCH at a time (each waited for until it listens),
# and stops adding at the first VM that does not come up or when MemAvailable falls below
# $DENSITY_RESERVE MiB (the box's other work keeps that much); asks each for / once all are
# up and again after a hold, and prints the figures.
serving_density() {
    local vmm=$1 n=$2 i j first available_before available_after t0 t1 t2 vmm_pids pss
    local listening=0 stopped_by="" started
    echo "== serving density: up to $n http VMs on $vmm (KVM), each with its own $DENSITY_NET, $BATCH starting at a time"
    available_before=$(mem_available_kib)
    t0=$(date +%s%N)
    for i in $(seq 0 $((n - 1))); do
        local log="$WORK/$vmm-$i.log"
        if [ "$DENSITY_NET" = tap ]; then
            "$RUNNER" boot --vmm "$vmm" --accel kvm --tap --memory "$MEMORY" --timeout 3600 "$HTTP" >"$log" 2>&1 &
        else
            "$RUNNER" boot --vmm "$vmm" --accel kvm --forward "$((30000 + i)):80" --memory "$MEMORY" \
                --timeout 3600 "$HTTP" >"$log" 2>&1 &
        fi
        vm_pids+=($!)
        pids+=($!)
        if (((i + 1) % BATCH == 0 || i + 1 == n)); then
            first=$((i - (i % BATCH)))
            for j in $(seq "$first" "$i"); do
                if wait_for "$WORK/$vmm-$j.log" "http: listening" "${vm_pids[j]}" 2>"$WORK/$vmm-failed"; then
                    listening=$((listening + 1))
                    # (No namespace with passt: then the name is empty.)
                    vm_ns[j]=$(grep -o 'in namespace [^ ]*' "$WORK/$vmm-$j.log" | head -1 | cut -d' ' -f3 || true)
                else
                    stopped_by="VM $j did not come up: $(tail -3 "$WORK/$vmm-failed" | tr '\n' ' ')"
                fi
            done
            if (((i + 1) % 100 == 0)); then
                echo "  $((i + 1)) listening after $(( ($(date +%s%N) - t0) / 1000000 )) ms, MemAvailable $(($(mem_available_kib) / 1024)) MiB"
            fi
            if [ -z "$stopped_by" ] && (($(mem_available_kib) < DENSITY_RESERVE * 1024)); then
                stopped_by="host memory (MemAvailable below DENSITY_RESERVE=$DENSITY_RESERVE MiB)"
            fi
            [ -n "$stopped_by" ] && break
        fi
    done
    started=${#vm_pids[@]}
    [ -n "$stopped_by" ] && echo "  stopped adding VMs at $started: $stopped_by"
    n=$started
    t1=$(date +%s%N)
    request_each "$WORK/$vmm-first"
    available_after=$(mem_available_kib)
    vmm_pids=$(for pid in "${vm_pids[@]}"; do echo "$pid"; pgrep -P "$pid" || true; done | tr '\n' ' ')
    # shellcheck disable=SC2086
    pss=$(pss_kib $vmm_pids)
    sleep "$HOLD"
    request_each "$WORK/$vmm-again"
    t2=$(date +%s%N)
    stop_set
    awk -v n="$n" -v l="$listening" -v up="$(((t1 - t0) / 1000000))" -v p="$pss" \
        -v d="$((available_before - available_after))" -v vmm="$vmm" 'BEGIN {
        printf "%s: %d VMs started, %d listening after %.1f s (%.1f per second)\n", vmm, n, l, up / 1000, l / (up / 1000)
        printf "%s host memory per VM: %.0f KiB of MemAvailable (KVM, page tables, namespaces included), %.0f KiB PSS of the VMM processes\n", vmm, d / n, p / n }'
    echo "$vmm requests once all were up: $(request_summary "$WORK/$vmm-first")"
    echo "$vmm requests again after holding all ${HOLD} s more: $(request_summary "$WORK/$vmm-again")"
    echo "$vmm stopped; namespaces left: $left"
    echo "$vmm,$n,$(((t1 - t0) / 1000000)),$(((available_before - available_after) / n)),$((pss / n)),$(awk '$2 == 200' "$WORK/$vmm-first" | wc -l),$(awk '$2 == 200' "$WORK/$vmm-again" | wc -l),$(((t2 - t1) / 1000000))" >>"$WORK/density.csv"
}

if [[ $PARTS == *density* ]]; then
    vm_pids=()
    vm_ns=()
    # Each monitor VM is a runner process of six tasks (main, signals, vCPU, device thread,
    # watchdog, and KVM's kvm-nx-lpage-recovery), a QEMU VM a runner and a QEMU; plus the
    # short-lived `ip` processes of each start. Raised for the run, restored at its end.
    old_pid_max=$(cat /proc/sys/kernel/pid_max)
    want_pid_max=$(((DENSITY * 8 + 8192)))
    if ((want_pid_max > old_pid_max)); then
        sysctl -q -w kernel.pid_max="$want_pid_max"
        restore+=("sysctl -q -w kernel.pid_max=$old_pid_max")
        echo "kernel.pid_max: $old_pid_max -> $want_pid_max for the run"
    fi
    serving_density monitor "$DENSITY"
    if ((DENSITY_BASELINE > 0)); then
        serving_density qemu "$DENSITY_BASELINE"
        echo "== per VM, monitor against QEMU microvm (same image, same network, KVM both)"
    fi
    awk -F, '{ up[$1] = $3 / $2; mem[$1] = $4; pss[$1] = $5 } END {
        if (!("qemu" in mem)) exit
        printf "MemAvailable per VM: monitor %d KiB, QEMU %d KiB (QEMU/monitor %.1fx)\n", mem["monitor"], mem["qemu"], mem["qemu"] / mem["monitor"]
        printf "PSS per VM: monitor %d KiB, QEMU %d KiB (%.1fx)\n", pss["monitor"], pss["qemu"], pss["qemu"] / pss["monitor"]
        printf "start time per VM (batches of '"$BATCH"'): monitor %.1f ms, QEMU %.1f ms (%.1fx)\n", up["monitor"], up["qemu"], up["qemu"] / up["monitor"] }' "$WORK/density.csv"
fi
