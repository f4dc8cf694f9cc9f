#!/usr/bin/env bash
# HTTP throughput and latency of examples/http against a Linux VM serving the same
# response, side by side in one run, under the same QEMU settings; then, optionally, a soak.
#
#   sudo benches/http.sh                 # 3 alternating rounds of 10 s per VM
#   sudo ROUNDS=5 DURATION=20 benches/http.sh
#   sudo SOAK=600 benches/http.sh        # then 10 minutes at moderate load (see below)
#
# What runs:
# - the unikernel: examples/http (release), booted through PVH (its multiboot magic masked
#   on a copy, as the runner does);
# - the Linux VM: Debian's kernel (linux-image-amd64, unpacked from the package) with a
#   busybox initramfs whose only program is benches/http-linux: the same request handling
#   (examples/http/src/handler.rs) in a static std binary, one thread per connection
#   (benches/linux-vm/build.sh makes it);
# - both under `qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max
#   -m 256 -smp 1` (TCG: this machine's KVM emulates guest ring-0 code), each with a
#   virtio-net device on its own tap device inside a network namespace this script creates
#   (and deletes): the unikernel at 10.0.2.15 behind tap0 (10.0.2.2), Linux at 10.0.3.15
#   behind tap1 (10.0.3.2). wrk runs inside the namespace; nothing outside it is addressed.
# - wrk -t1 -c$CONNECTIONS -d$DURATION --latency, alternating unikernel and Linux for
#   $ROUNDS rounds while both VMs are up (the idle one halts), after a warm-up of each.
#   The figure is the median over rounds of requests per second, and the ratio of the two.
#
# The soak ($SOAK seconds, 0 = none): wrk at a moderate, paced load on keep-alive
# connections (16 connections, 5 ms between requests on each) plus a second wrk that
# opens a new connection for every request (4 connections, `Connection: close`), for
# socket churn. Every 30 s the unikernel's /stats is read: the heap's high-water mark after
# the first minute must not grow, and the VM must still answer at the end.
#
# Needs root (namespaces, tap devices), qemu-system-x86, wrk, curl, python3, and apt-get
# to fetch the kernel package. Caches go to target/bench-http (never committed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/target/bench-http}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-3}
SOAK=${SOAK:-0}
MEMORY=${MEMORY:-256}
NS=ukbench-$$

[ "$(id -u)" = 0 ] || { echo "http.sh: needs root (network namespace, tap devices)" >&2; exit 1; }
for tool in qemu-system-x86_64 ip curl python3; do
    command -v "$tool" >/dev/null || { echo "http.sh: $tool is missing" >&2; exit 1; }
done
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
mkdir -p "$WORK"

echo "== building"
(cd "$ROOT/examples" && cargo build -q --release -p http)
UNIKERNEL="$ROOT/examples/target/x86_64-unknown-none/release/http"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
    --manifest-path "$ROOT/Cargo.toml" -p http-linux --target x86_64-unknown-linux-gnu
SERVER="$ROOT/target/x86_64-unknown-linux-gnu/release/http-linux"
"$ROOT/benches/linux-vm/build.sh" "$WORK/linux" "$SERVER"
python3 - "$UNIKERNEL" "$WORK/http.pvh" <<'EOF'
import struct, sys
image = bytearray(open(sys.argv[1], "rb").read())
for offset in range(0, min(8192, len(image) - 4), 4):
    if struct.unpack_from("<I", image, offset)[0] == 0x1BADB002:
        image[offset:offset + 4] = bytes(4)
        break
open(sys.argv[2], "wb").write(image)
EOF
echo "unikernel: $(stat -c %s "$UNIKERNEL") bytes; Linux: $(cat "$WORK/linux/kernel-package"), initramfs $(stat -c %s "$WORK/linux/initrd.cpio.gz") bytes"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
for i in 0 1; do
    ip -n "$NS" tuntap add dev "tap$i" mode tap
    ip -n "$NS" addr add "10.0.$((i + 2)).2/24" dev "tap$i"
    ip -n "$NS" link set "tap$i" up
done
# (Background processes are started with `ip netns exec` itself, not through this function,
# so that their pids are theirs and the cleanup can kill them.)
in_ns() { ip netns exec "$NS" "$@"; }

QEMU=(qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m "$MEMORY"
    -smp 1 -nodefaults -no-user-config -nographic -display none -no-reboot)
echo "== QEMU: ${QEMU[*]} -netdev tap,... -device virtio-net-device,..."
ip netns exec "$NS" "${QEMU[@]}" -serial "file:$WORK/linux.serial" -kernel "$WORK/linux/vmlinuz" \
    -initrd "$WORK/linux/initrd.cpio.gz" -append "console=ttyS0 no_timer_check bench.ip=10.0.3.15/24" \
    -netdev tap,id=n1,ifname=tap1,script=no,downscript=no -device virtio-net-device,netdev=n1 &
pids+=($!)
ip netns exec "$NS" "${QEMU[@]}" -serial "file:$WORK/unikernel.serial" -kernel "$WORK/http.pvh" -append "--" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-device,netdev=n0 &
pids+=($!)

UNIKERNEL_URL=http://10.0.2.15/
LINUX_URL=http://10.0.3.15/
wait_up() {
    for _ in $(seq 120); do
        in_ns curl -s -m 1 -o /dev/null "$2" && { echo "$1 is up"; return 0; }
        sleep 1
    done
    echo "http.sh: $1 did not answer within 120 s; its console:" >&2
    cat "$WORK/$1.serial" >&2
    exit 1
}
wait_up linux "$LINUX_URL"
wait_up unikernel "$UNIKERNEL_URL"
[ "$(in_ns curl -s "$UNIKERNEL_URL")" = "$(in_ns curl -s "$LINUX_URL")" ] ||
    { echo "http.sh: the two servers answer / differently" >&2; exit 1; }

# One wrk run: prints "requests_per_second p50 p90 p99" (latencies in ms).
measure() {
    in_ns wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(label):
    m = re.search(r"^\s+" + str(label) + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"{rps:.0f} {ms(50):.2f} {ms(90):.2f} {ms(99):.2f}" + (f" ERRORS({errors.group(0)})" if errors else ""))
'
}

echo "== warm-up (${WARMUP} s each)"
measure "$UNIKERNEL_URL" "$WARMUP" >/dev/null
measure "$LINUX_URL" "$WARMUP" >/dev/null

echo "== wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds"
printf "%-6s %-10s %10s %9s %9s %9s\n" round server req/s p50_ms p90_ms p99_ms
uk=() lx=()
for round in $(seq "$ROUNDS"); do
    for server in unikernel linux; do
        url=$UNIKERNEL_URL
        [ "$server" = linux ] && url=$LINUX_URL
        read -r rps p50 p90 p99 rest < <(measure "$url" "$DURATION")
        printf "%-6s %-10s %10s %9s %9s %9s %s\n" "$round" "$server" "$rps" "$p50" "$p90" "$p99" "${rest:-}"
        if [ "$server" = unikernel ]; then uk+=("$rps $p50 $p90 $p99"); else lx+=("$rps $p50 $p90 $p99"); fi
    done
done
python3 - "${#uk[@]}" "${uk[@]}" "${lx[@]}" <<'EOF'
import statistics, sys
n = int(sys.argv[1])
rows = [list(map(float, row.split())) for row in sys.argv[2:]]
uk, lx = rows[:n], rows[n:]
med = lambda rows, i: statistics.median(row[i] for row in rows)
print("== median over rounds")
for name, r in (("unikernel", uk), ("linux", lx)):
    print(f"{name:10} {med(r,0):10.0f} req/s   p50 {med(r,1):.2f} ms   p90 {med(r,2):.2f} ms   p99 {med(r,3):.2f} ms")
print(f"ratio (unikernel / Linux): {med(uk,0) / med(lx,0):.2f}x requests per second, "
      f"p99 latency {med(lx,3) / med(uk,3):.1f}x lower")
EOF
echo "== unikernel /stats after the rounds"
in_ns curl -s "${UNIKERNEL_URL}stats"

if [ "$SOAK" -gt 0 ]; then
    # The Linux VM is not needed any more.
    kill "${pids[0]}" 2>/dev/null || true
    echo "== soak: ${SOAK} s at moderate load against the unikernel"
    cat >"$WORK/paced.lua" <<'EOF'
function delay() return 5 end
EOF
    cat >"$WORK/close.lua" <<'EOF'
wrk.headers["Connection"] = "close"
function delay() return 20 end
EOF
    ip netns exec "$NS" wrk -t1 -c16 -d"${SOAK}"s -s "$WORK/paced.lua" "$UNIKERNEL_URL" >"$WORK/soak-paced.txt" &
    load1=$!
    ip netns exec "$NS" wrk -t1 -c4 -d"${SOAK}"s -s "$WORK/close.lua" "$UNIKERNEL_URL" >"$WORK/soak-close.txt" &
    load2=$!
    : >"$WORK/soak-stats.txt"
    start=$(date +%s)
    while kill -0 "$load1" 2>/dev/null; do
        sleep 30
        stats=$(in_ns curl -s -m 5 "${UNIKERNEL_URL}stats" || echo "unreachable")
        used=$(echo "$stats" | awk '/^heap_used/ { print $2 }')
        high=$(echo "$stats" | awk '/^heap_high_water/ { print $2 }')
        sockets=$(echo "$stats" | awk '/^sockets/ { print $2 }')
        echo "$(( $(date +%s) - start )) ${used:-?} ${high:-?} ${sockets:-?}" | tee -a "$WORK/soak-stats.txt" |
            awk '{ printf "t=%4ss heap_used=%s heap_high_water=%s sockets=%s\n", $1, $2, $3, $4 }'
    done
    wait "$load1" "$load2" || true
    echo "-- paced keep-alive load:"; grep -E "requests in|Requests/sec|Socket errors|Non-2xx" "$WORK/soak-paced.txt"
    echo "-- connection-per-request load:"; grep -E "requests in|Requests/sec|Socket errors|Non-2xx" "$WORK/soak-close.txt"
    python3 - "$WORK/soak-stats.txt" <<'EOF'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
ok = all(r[2] != "?" for r in rows)
settled = [int(r[2]) for r in rows if r[2] != "?" and int(r[0]) >= 60]
if not ok:
    print("soak: FAIL (the unikernel stopped answering)"); sys.exit(1)
if len(settled) >= 2 and settled[-1] > settled[0]:
    print(f"soak: FAIL (heap high-water grew from {settled[0]} to {settled[-1]} bytes after the first minute)"); sys.exit(1)
print(f"soak: PASS ({len(rows)} samples; heap high-water {settled[0] if settled else rows[-1][2]} bytes, unchanged after the first minute)")
EOF
fi
