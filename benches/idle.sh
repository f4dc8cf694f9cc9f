#!/bin/sh
# What an idle guest costs the host: QEMU's CPU time (user + system, from /proc) while
# examples/http sits idle with a keep-alive connection open, on the PCI machines (pc, q35)
# under TCG. The baseline, in the same run and machine: examples/empty halted for good
# (`unikernel.idle`: interrupts masked, nothing can wake it), what QEMU itself costs for
# a VM that does nothing. Prints each share of one core and the ratio. Not a test:
# runner/tests/net.rs checks that the idle server waits for the device's interrupts
# instead of polling (it counts its waits), not what that costs.
#
#   benches/idle.sh [seconds]        (default 5 of idle time per measure)
set -eu
seconds=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
(cd "$repo/examples" && cargo build -q --release -p http -p empty)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# QEMU prefers an image's multiboot header to its PVH note; mask the multiboot magic so
# the images boot through PVH, as the runner does.
for app in http empty; do
    cp "$repo/examples/target/x86_64-unknown-none/release/$app" "$tmp/$app"
    offset=$(LC_ALL=C grep -obUaP '\x02\xb0\xad\x1b' "$tmp/$app" | head -n 1 | cut -d: -f1)
    printf '\0\0\0\0' | dd of="$tmp/$app" bs=1 seek="$offset" conv=notrunc status=none
done
echo "QEMU $(qemu-system-x86_64 --version | head -n 1 | cut -d' ' -f4), TCG, $(nproc) host CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp" "$seconds" <<'PY'
import os, socket, subprocess, sys, time

tmp, seconds = sys.argv[1], float(sys.argv[2])
ticks = os.sysconf("SC_CLK_TCK")

def cpu_seconds(pid):
    """utime + stime of `pid` (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def qemu(machine, kernel, append, extra):
    return ["qemu-system-x86_64", "-M", machine, "-accel", "tcg", "-cpu", "max", "-m", "64",
            "-fw_cfg", "name=etc/sercon-port,string=0", "-nodefaults", "-no-user-config",
            "-nographic", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", f"{tmp}/{kernel}", "-append", append] + extra

def idle_share(command, ready, before_idle=lambda: None):
    """QEMU's CPU share over `seconds` once `ready` is on its console."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, bufsize=0) as process:
        try:
            start = time.monotonic()
            output = b""
            while ready not in output:
                line = process.stdout.readline()
                if not line or time.monotonic() - start > 120:
                    sys.exit(f"no {ready!r} from {' '.join(command)}:\n{output.decode()}")
                output += line
            held = before_idle()
            time.sleep(0.5)
            cpu, wall = cpu_seconds(process.pid), time.monotonic()
            time.sleep(seconds)
            share = (cpu_seconds(process.pid) - cpu) / (time.monotonic() - wall)
            del held
            return share
        finally:
            process.kill()

for machine in ("q35", "pc"):
    port = free_port()
    def keep_alive():
        """One request, its connection left open."""
        connection = socket.create_connection(("127.0.0.1", port), timeout=20)
        connection.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        connection.recv(65536)
        return connection
    net = ["-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:80",
           "-device", "virtio-net-pci,netdev=net0"]
    # The halted guest prints nothing: wait for SeaBIOS and the boot to pass instead.
    baseline = idle_share(qemu(machine, "empty", "unikernel.idle", []), b"", lambda: time.sleep(2))
    http = idle_share(qemu(machine, "http", "", net), b"http: listening", keep_alive)
    print(f"{machine:4} idle CPU: http {http * 100:5.1f}% of a core, halted empty "
          f"{baseline * 100:5.1f}%: {http / max(baseline, 1e-3):.2f}x")
PY
