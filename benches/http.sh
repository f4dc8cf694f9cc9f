#!/usr/bin/env bash
# HTTP throughput and latency of examples/http against a Linux VM serving the same
# response, side by side in one run, under the same QEMU settings; then, optionally, a soak.
#
#   sudo benches/http.sh                 # 3 alternating rounds of 10 s per VM
#   sudo ROUNDS=5 DURATION=20 benches/http.sh
#   sudo SOAK=600 benches/http.sh        # then a 10-minute soak, quiet, and 10 more under attack
#   sudo ROUNDS=0 SOAK=180 benches/http.sh   # the soak alone (no Linux VM), 3 + 3 minutes
#   sudo IMAGE=/tmp/http-old ROUNDS=0 SOAK=120 benches/http.sh   # a given http image, not built
#
# What runs:
# - the unikernel: examples/http (release), booted through PVH (its multiboot magic masked
#   on a copy, as the runner does);
# - the Linux VM: Debian's kernel (linux-image-amd64, unpacked from the package) with a
#   busybox initramfs whose only program is benches/http-linux: the same request handling
#   (examples/http/src/handler.rs) in a static std binary, one thread per connection
#   (benches/linux-vm/build.sh makes it); its TSC frequency is given on the command line
#   (linux_vm_clock_args, as storage.sh does), so that a loaded host does not hang its
#   boot in the PIT calibration;
# - both under `qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max
#   -m 256 -smp 1` (TCG: this machine's KVM emulates guest ring-0 code), each with a
#   virtio-net device on its own tap device inside a network namespace this script creates
#   (and deletes): the unikernel at 10.0.2.15 behind tap0 (10.0.2.2), Linux at 10.0.3.15
#   behind tap1 (10.0.3.2). wrk runs inside the namespace; nothing outside it is addressed.
# - wrk -t1 -c$CONNECTIONS -d$DURATION --latency, alternating unikernel and Linux for
#   $ROUNDS rounds while both VMs are up (the idle one halts), after a warm-up of each.
#   The figure is the median over rounds of requests per second, and the ratio of the two.
#   ROUNDS=0 skips the comparison and the Linux VM.
#
# The soak ($SOAK seconds a phase, 0 = none; benches/soak.sh): a moderate, paced load on
# keep-alive connections plus a connection-per-request load, first alone, then beside 200
# slowloris connections and a flood of spoofed SYNs (benches/attack, inside the namespace).
# It prints the legitimate p50/p99 of both phases and their ratio, a sequential
# connection-per-request client's connect-to-answer p50/p99, the errors, whether the
# guest is alive, and the heap's high-water mark every 30 s, which must stay flat.
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
if [ -n "${IMAGE:-}" ]; then
    # A given build of examples/http (e.g. one of another commit, to compare).
    UNIKERNEL=$IMAGE
else
    (cd "$ROOT/examples" && cargo build -q --release -p http)
    UNIKERNEL="$ROOT/examples/target/x86_64-unknown-none/release/http"
fi
if [ "$ROUNDS" -gt 0 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
        --manifest-path "$ROOT/Cargo.toml" -p http-linux --target x86_64-unknown-linux-gnu
    SERVER="$ROOT/target/x86_64-unknown-linux-gnu/release/http-linux"
    "$ROOT/benches/linux-vm/build.sh" "$WORK/linux" "$SERVER"
    # shellcheck source=benches/linux-vm/lib.sh
    . "$ROOT/benches/linux-vm/lib.sh"
fi
if [ "$SOAK" -gt 0 ]; then
    cargo build -q --release --manifest-path "$ROOT/Cargo.toml" -p attack
    ATTACK="$ROOT/target/release/attack"
fi
python3 - "$UNIKERNEL" "$WORK/http.pvh" <<'EOF'
import struct, sys
image = bytearray(open(sys.argv[1], "rb").read())
for offset in range(0, min(8192, len(image) - 4), 4):
    if struct.unpack_from("<I", image, offset)[0] == 0x1BADB002:
        image[offset:offset + 4] = bytes(4)
        break
open(sys.argv[2], "wb").write(image)
EOF
echo "unikernel: $(stat -c %s "$UNIKERNEL") bytes"
[ "$ROUNDS" -gt 0 ] && echo "Linux: $(cat "$WORK/linux/kernel-package"), initramfs $(stat -c %s "$WORK/linux/initrd.cpio.gz") bytes"

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
LINUX_PID=
if [ "$ROUNDS" -gt 0 ]; then
    ip netns exec "$NS" "${QEMU[@]}" -serial "file:$WORK/linux.serial" -kernel "$WORK/linux/vmlinuz" \
        -initrd "$WORK/linux/initrd.cpio.gz" -append "console=ttyS0 $(linux_vm_clock_args) bench.ip=10.0.3.15/24" \
        -netdev tap,id=n1,ifname=tap1,script=no,downscript=no -device virtio-net-device,netdev=n1 &
    LINUX_PID=$!
    pids+=("$LINUX_PID")
fi
ip netns exec "$NS" "${QEMU[@]}" -serial "file:$WORK/unikernel.serial" -kernel "$WORK/http.pvh" -append "--" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-device,netdev=n0 &
UNIKERNEL_PID=$!
pids+=("$UNIKERNEL_PID")

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
[ "$ROUNDS" -gt 0 ] && wait_up linux "$LINUX_URL"
wait_up unikernel "$UNIKERNEL_URL"
grep -m1 "http: listening" "$WORK/unikernel.serial" || true
[ "$ROUNDS" -eq 0 ] || [ "$(in_ns curl -s "$UNIKERNEL_URL")" = "$(in_ns curl -s "$LINUX_URL")" ] ||
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

# The comparison with Linux (ROUNDS=0: none).
if [ "$ROUNDS" -gt 0 ]; then
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
fi

if [ "$SOAK" -gt 0 ]; then
    # The Linux VM is not needed any more.
    [ -n "$LINUX_PID" ] && { kill "$LINUX_PID" 2>/dev/null || true; }
    NS=$NS WORK=$WORK SOAK=$SOAK ATTACK=$ATTACK UNIKERNEL_URL=$UNIKERNEL_URL \
        UNIKERNEL_PID=$UNIKERNEL_PID UNIKERNEL_SERIAL=$WORK/unikernel.serial \
        "$ROOT/benches/soak.sh"
fi
