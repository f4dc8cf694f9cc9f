#!/bin/sh
# Real-time figures under QEMU microvm + TCG (issue 3): release jitter of a 1 kHz task,
# timer interrupt latency, context-switch cost. Not a test: it prints figures.
#
#   benches/rt.sh [seconds]        (default 10)
#
# 1. rt-periodic for <seconds> with the other two tasks idle (--load 0): the 1 kHz
#    `control` task nearly alone; its release jitter is the time from each nominal release
#    to the job's first instruction; the timer's raw interrupt latency (from the instant
#    the LAPIC timer was set to fire to the handler) comes with it.
# 2. The same with the other two tasks working (--load 100): EDF lets a job of theirs with
#    an earlier deadline delay `control` a little.
# 3. (1) with the timer advance off (kernel flag unikernel.timer_advance=0): the jitter
#    one gets from the interrupt alone.
# 4. rt-threads: two threads yielding to each other, 20000 times: one context switch.
# 5. rt-fixed under preemptive fixed priorities: how late an urgent thread wakes while a
#    thread that never yields spins (ideal: 0), and how long a thread waits for a lock
#    whose holder has 20 ms of work left, with priority inheritance (ideal: 20 ms; about
#    120 ms without). runner/tests/rt.rs checks the order of these events, not the times.
# 6. examples/smp --bench on 2 vCPUs (multi-threaded TCG: one host thread per vCPU): the
#    same sum of 1..=200 million once split over both CPUs and once on CPU 0 alone, in the
#    same run; it prints both times and the speed-up (ideal 2; a shared 2-CPU host gives
#    QEMU's two vCPU threads less than two whole CPUs).
# 7. examples/smp-jitter on 2 vCPUs: the 1 kHz task `tick` on CPU 0 while a thread spins on
#    CPU 1, and, at the same time, a host thread's own 1 kHz timer (benches/host_timer.c,
#    cyclictest-like, SCHED_OTHER nice 0 like QEMU); prints both and the guest/host ratios
#    of p99 and max (below 1: the guest did better than the host's own thread).
# 8. The same for the 1 kHz task `tick1` on CPU 1 (its own scheduler and LAPIC timer)
#    while a thread spins on CPU 0, beside a new run of the host thread. In both, the
#    other CPU also runs its own 1 kHz task, above the spinning thread.
# 9. (7) and (8) again as root with `cargo uk boot --realtime 1` (QEMU's vCPU threads under
#    SCHED_FIFO 1, its main loop, which runs the guest's timers, at 2) and the host thread
#    under SCHED_FIFO 1 too (`chrt -f 1`): the same priority settings on both sides, as a
#    real-time VM is run. At SCHED_OTHER the spinning vCPU's host thread can hold the CPU
#    the timer's wake-up lands on for a scheduler slice (about 1 ms), which the guest's
#    p99 then shows; under SCHED_FIFO the wake-up preempts it.
#
# The host's load average is printed before and after: on a shared 2-CPU host other work
# deschedules QEMU's threads for milliseconds now and then, which shows in the maxima.
set -eu
seconds=${1:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
(cd "$repo/examples" && cargo build -q --release -p rt-periodic -p rt-threads -p rt-fixed -p smp -p smp-jitter)
(cd "$repo" && cargo build -q --release -p runner)
runner="$repo/target/release/runner"
elf="$repo/examples/target/x86_64-unknown-none/release"
qemu="qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m 32 -nodefaults -no-user-config -nographic -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04"
timeout=$((seconds * 3 + 60))

run() { # name, kernel, command line
    echo "== $1"
    echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    out=$(timeout "$timeout" $qemu -kernel "$2" -append "$3" 2>&1 | tr -d '\r' | grep -v '^\[WARN') || true
    echo "$out" | grep -E '^(task|control|telemetry|logger|  |timer|context|deadline|rt-periodic)' | sed 's/^/   /'
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
}

echo "QEMU $(qemu-system-x86_64 --version | head -n 1 | cut -d' ' -f4), TCG, $(nproc) host CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
run "1 kHz task nearly alone, $seconds s" "$elf/rt-periodic" "-- --seconds $seconds --load 0"
run "1 kHz task beside two working tasks (EDF), $seconds s" "$elf/rt-periodic" "-- --seconds $seconds --load 100"
run "1 kHz task nearly alone, timer advance off, $seconds s" "$elf/rt-periodic" "unikernel.timer_advance=0 -- --seconds $seconds --load 0"

echo "== context switch"
timeout 120 $qemu -kernel "$elf/rt-threads" -append "-- --sleeps 0" 2>&1 | tr -d '\r' | grep -E '^context switch' | sed 's/^/   /'
echo

echo "== fixed priorities"
timeout 120 $qemu -kernel "$elf/rt-fixed" 2>&1 | tr -d '\r' | grep -E '(woke at most|got the lock after)' | sed 's/^/   /'
echo

echo "== compute on 2 vCPUs (examples/smp --bench)"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 $(echo "$qemu" | sed 's/-accel tcg/-accel tcg,thread=multi -smp 2/') -kernel "$elf/smp" -append "-- --bench 200000000" 2>&1 | tr -d '\r' | grep -E '^compute' | sed 's/^/   /'
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

host_timer=$(mktemp)
cc -O2 -o "$host_timer" "$repo/benches/host_timer.c"
host_out=$(mktemp)
field() { echo "$1" | sed -n "s/.* $2 \([0-9]*\) ns.*/\1/p"; }
# The 1 kHz task of CPU <1 - busy> while a thread spins on CPU <busy>, and at the same
# time the host thread's own 1 kHz timer; then the guest/host ratios.
per_cpu_jitter() { # busy CPU, title, [realtime priority]
    echo "== $2, beside a host thread's 1 kHz timer, $seconds s"
    echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "${3:-}" ]; then
        chrt -f "$3" "$host_timer" "$seconds" > "$host_out" &
        realtime="--realtime $3"
    else
        "$host_timer" "$seconds" > "$host_out" &
        realtime=
    fi
    guest=$("$runner" boot --quiet --accel tcg --cpus 2 --timeout "$timeout" $realtime "$elf/smp-jitter" --seconds "$seconds" --busy "$1" 2>&1 | tr -d '\r' | grep -E '^jitter') || true
    wait
    host=$(cat "$host_out")
    echo "   guest $guest"
    echo "   $host"
    awk -v gp="$(field "$guest" p99)" -v gm="$(field "$guest" max)" -v hp="$(field "$host" p99)" -v hm="$(field "$host" max)" \
        'BEGIN { if (hp > 0 && hm > 0) printf "   guest/host: p99 %.2f, max %.2f\n", gp / hp, gm / hm }'
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
}
per_cpu_jitter 1 "1 kHz task on CPU 0 with CPU 1 busy"
per_cpu_jitter 0 "1 kHz task on CPU 1 with CPU 0 busy"
if [ "$(id -u)" = 0 ]; then
    per_cpu_jitter 1 "1 kHz task on CPU 0 with CPU 1 busy, SCHED_FIFO on both sides" 1
    per_cpu_jitter 0 "1 kHz task on CPU 1 with CPU 0 busy, SCHED_FIFO on both sides" 1
else
    echo "== SCHED_FIFO on both sides: skipped (--realtime needs root)"
fi
rm -f "$host_timer" "$host_out"
