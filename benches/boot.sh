#!/bin/sh
# Boot to exit under QEMU microvm + TCG, measured by hyperfine on the bare QEMU command:
# the floor kernel (examples/floor), examples/empty and examples/hello, in one run, with the
# serial output discarded (so the figure is the VM's, not a terminal's). Prints hyperfine's
# table and the ratios to the floor.
#
#   benches/boot.sh [runs]        (default 100; needs hyperfine: apt-get install hyperfine)
#
# RUNNER_FLOOR=<elf> compares with another floor kernel (e.g. a reference build) instead.
set -eu
runs=${1:-100}
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v hyperfine >/dev/null || { echo "benches/boot.sh needs hyperfine: apt-get install -y hyperfine" >&2; exit 1; }
(cd "$repo/examples" && cargo build -q --release -p floor -p empty -p hello)
floor=${RUNNER_FLOOR:-$repo/examples/target/x86_64-unknown-none/release/floor}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# QEMU prefers an image's multiboot header to its PVH note; mask the multiboot magic so
# the images boot through PVH, as the runner does.
for app in empty hello; do
    cp "$repo/examples/target/x86_64-unknown-none/release/$app" "$tmp/$app"
    offset=$(LC_ALL=C grep -obUaP '\x02\xb0\xad\x1b' "$tmp/$app" | head -n 1 | cut -d: -f1)
    printf '\0\0\0\0' | dd of="$tmp/$app" bs=1 seek="$offset" conv=notrunc status=none
done

qemu="qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m 32 -nodefaults -no-user-config -nographic -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel"
hyperfine -N --warmup 5 --runs "$runs" -i --export-json "$tmp/boot.json" \
    -n floor "$qemu $floor" -n empty "$qemu $tmp/empty" -n hello "$qemu $tmp/hello"
python3 - "$tmp/boot.json" <<'PY'
import json, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
floor = statistics.median(results["floor"]["times"])
for name in ("floor", "empty", "hello"):
    median = statistics.median(results[name]["times"])
    print(f"{name:6} median {median * 1e3:6.2f} ms   {median / floor:.3f}x the floor")
PY
