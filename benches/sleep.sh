#!/bin/sh
# sleep(50 ms) of a guest against the host's clock, under QEMU microvm + TCG: rt-threads
# sleeps <count> times, printing a line before and after each, and the host timestamps the
# lines as they arrive on QEMU's stdout. The baseline, in the same run and timed the same
# way: a host process that prints the same lines around its own 50 ms sleeps, so the
# host's timer slack and the pipe are in both figures. Not a test: it prints figures
# (runner/tests/rt.rs checks only that a sleep is neither short nor far off 50 ms).
#
#   benches/sleep.sh [count]        (default 50)
set -eu
count=${1:-50}
repo=$(cd "$(dirname "$0")/.." && pwd)
(cd "$repo/examples" && cargo build -q --release -p rt-threads)
elf="$repo/examples/target/x86_64-unknown-none/release/rt-threads"
echo "QEMU $(qemu-system-x86_64 --version | head -n 1 | cut -d' ' -f4), TCG, $(nproc) host CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$elf" "$count" <<'PY'
import statistics, subprocess, sys, time

elf, count = sys.argv[1], int(sys.argv[2])
qemu = ["qemu-system-x86_64", "-M", "microvm,pit=on,pic=on,rtc=on", "-accel", "tcg",
        "-cpu", "max", "-m", "32", "-nodefaults", "-no-user-config", "-nographic",
        "-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-kernel", elf, "-append", f"-- --sleeps {count} --quick"]
host = [sys.executable, "-c",
        "import sys, time\n"
        f"for i in range({count}):\n"
        "    print(f'sleep {i}: begin', flush=True)\n"
        "    time.sleep(0.05)\n"
        "    print(f'sleep {i}: end', flush=True)\n"]

def timed_sleeps(command):
    """The host-measured length of each sleep, in ms, from the begin and end lines."""
    begins, lengths = {}, []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, bufsize=0) as process:
        deadline = time.monotonic() + 60 + count
        for raw in iter(process.stdout.readline, b""):
            now = time.monotonic()
            words = raw.decode(errors="replace").split()
            if len(words) >= 3 and words[0] == "sleep":
                if words[2] == "begin":
                    begins[words[1]] = now
                elif words[2] == "end" and words[1] in begins:
                    lengths.append((now - begins.pop(words[1])) * 1e3)
            if now > deadline:
                process.kill()
    if len(lengths) != count:
        sys.exit(f"{command[0]}: {len(lengths)} of {count} sleeps seen")
    return lengths

def summary(lengths):
    ordered = sorted(lengths)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return statistics.median(ordered), p90, ordered[-1]

# Alternate the two, so that a change in the host's load touches both.
guest, baseline = [], []
for _ in range(2):
    baseline += timed_sleeps(host)
    guest += timed_sleeps(qemu)
for name, lengths in (("host", baseline), ("guest", guest)):
    median, p90, worst = summary(lengths)
    print(f"{name:5} sleep(50 ms), {len(lengths)} times: median {median:6.2f} ms  "
          f"p90 {p90:6.2f} ms  max {worst:6.2f} ms  (median over by {(median - 50) * 1e3:5.0f} us)")
ratio = summary(guest)[0] / summary(baseline)[0]
print(f"guest / host median: {ratio:.4f}x")
PY
