#!/usr/bin/env bash
# Storage figures under QEMU microvm + TCG (-cpu max) and on the project's monitor (KVM),
# through `cargo uk boot`:
#
#   benches/storage.sh              # 5 boots per boot-time figure
#   RUNS=11 MIB=128 benches/storage.sh
#   MONITOR=0 benches/storage.sh    # QEMU only
#
# - the initrd: read throughput of a 10 MB file through `File::read` (a copy into a 64 KiB
#   buffer) and through `Fs::bytes` (in place), examples/files --throughput;
# - boot to exit of examples/files with a 10 MB initrd and with none (its warning path),
#   median and min of $RUNS boots each, alternating; the initrd is packed once beforehand;
# - the disk (virtio-blk, FAT): sequential write (synced) and read of a $MIB MiB file
#   (examples/disk-io --roundtrip), and small files: create + write 1 KiB + sync_all, read,
#   remove, per second (--small $SMALL).
#
# - on the monitor (when /dev/kvm is usable; MONITOR=0 skips it): the disk figures with its
#   virtio-blk back end, page-cached and with --disk-direct (O_DIRECT). (Not the initrd's
#   10 MB read: under nested KVM it takes minutes of emulated guest code.) Smaller sizes ($MONITOR_MIB MiB, $MONITOR_SMALL files): where KVM is nested
#   and emulates guest kernel code (as on the development machine, ~1 us an instruction),
#   the guest's own work (the pattern, the CRC-32, FAT) dominates these figures, not the
#   device; on hardware KVM they measure the device.
#
# Not measured here yet: the same device under a Linux VM (as benches/http.sh does for
# the network). Caches go to target/bench-storage (never committed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/target/bench-storage}
RUNS=${RUNS:-5}
MIB=${MIB:-64}
SMALL=${SMALL:-500}
MONITOR=${MONITOR:-1}
MONITOR_MIB=${MONITOR_MIB:-4}
MONITOR_SMALL=${MONITOR_SMALL:-50}
mkdir -p "$WORK"

echo "== building"
(cd "$ROOT/examples" && cargo build -q --release -p files -p disk-io)
# The runner's binary, called directly: `cargo run` would add its own checks to each boot.
cargo build -q --manifest-path "$ROOT/Cargo.toml" -p runner
UK=("$ROOT/target/debug/runner")
BIN="$ROOT/examples/target/x86_64-unknown-none/release"
"${UK[@]}" setup -q

echo "== initrd: a 10 MB file"
rm -rf "$WORK/files" && mkdir -p "$WORK/files"
head -c 10000000 /dev/urandom > "$WORK/files/big.bin"
python3 - "$WORK/files" "$WORK/files.cpio" <<'PY'
import os, sys
# newc, as the runner packs it: one file, then the trailer.
root, out = sys.argv[1], sys.argv[2]
def entry(name, mode, data):
    name = name.encode() + b"\0"
    head = b"070701" + b"".join(b"%08X" % v for v in
        (1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))
    blob = head + name
    blob += b"\0" * (-len(blob) % 4) + data
    return blob + b"\0" * (-len(blob) % 4)
data = open(os.path.join(root, "big.bin"), "rb").read()
open(out, "wb").write(entry("big.bin", 0o100644, data) + entry("TRAILER!!!", 0, b""))
PY
"${UK[@]}" boot --accel tcg --memory 64 --timeout 300 -q --files "$WORK/files.cpio" \
    "$BIN/files" --throughput /big.bin | grep '^files: throughput' || true

echo "== boot to exit of examples/files: 10 MB initrd vs none ($RUNS boots each, alternating)"
with=() without=()
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
for _ in $(seq "$RUNS"); do
    with+=("$(ms "${UK[@]}" boot --accel tcg --memory 64 -q --files "$WORK/files.cpio" "$BIN/files")")
    without+=("$(ms "${UK[@]}" boot --accel tcg --memory 64 -q "$BIN/files")")
done
summary() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms, min %d ms", a[int((NR+1)/2)], a[1]}'; }
echo "with a 10 MB initrd: $(summary "${with[@]}")"
echo "without an initrd:   $(summary "${without[@]}")"
echo "(wall time of the runner's boot, QEMU included; the difference is the initrd's cost)"

echo "== disk: $MIB MiB sequential, $SMALL small files"
rm -f "$WORK/disk.img"
"${UK[@]}" disk create "$WORK/disk.img" --size "$(( MIB * 2 ))MiB" >/dev/null
"${UK[@]}" boot --accel tcg --memory 64 --timeout 600 -q --disk "$WORK/disk.img" \
    "$BIN/disk-io" --roundtrip "$MIB" | grep '^disk-io:' || true
"${UK[@]}" boot --accel tcg --memory 64 --timeout 600 -q --disk "$WORK/disk.img" \
    "$BIN/disk-io" --small "$SMALL" | grep '^disk-io:' || true

if [ "$MONITOR" = 1 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    echo "== the monitor (KVM): disk $MONITOR_MIB MiB sequential, $MONITOR_SMALL small files"
    for direct in "" --disk-direct; do
        label="monitor${direct:+, O_DIRECT}"
        rm -f "$WORK/disk.img"
        "${UK[@]}" disk create "$WORK/disk.img" --size "$(( MONITOR_MIB * 2 + 8 ))MiB" >/dev/null
        # shellcheck disable=SC2086 # $direct is one flag or none
        "${UK[@]}" boot --vmm monitor --memory 64 --timeout 900 -q --disk "$WORK/disk.img" $direct \
            "$BIN/disk-io" --roundtrip "$MONITOR_MIB" | grep '^disk-io:' | sed "s/^/$label: /" || true
        # shellcheck disable=SC2086
        "${UK[@]}" boot --vmm monitor --memory 64 --timeout 900 -q --disk "$WORK/disk.img" $direct \
            "$BIN/disk-io" --small "$MONITOR_SMALL" | grep '^disk-io:' | sed "s/^/$label: /" || true
    done
fi
rm -f "$WORK/disk.img"
