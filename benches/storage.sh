#!/usr/bin/env bash
# Storage figures under QEMU microvm + TCG (-cpu max), each next to a Linux VM doing the same
# work under the same QEMU, and on the project's monitor (KVM), through `cargo uk boot`:
#
#   benches/storage.sh              # 5 boots per boot-time figure
#   RUNS=11 MIB=128 benches/storage.sh
#   MONITOR=0 benches/storage.sh    # QEMU only
#   LINUX=0 benches/storage.sh      # no Linux VM
#   PREPARE=1 benches/storage.sh    # build and fetch everything, measure nothing
#
# - the initrd: read throughput of a 10 MB file through `File::read` (a copy into a 64 KiB
#   buffer) and through `Fs::bytes` (in place), examples/files --throughput;
# - boot to exit of examples/files with a 10 MB initrd and with none (its warning path),
#   median and min of $RUNS boots each, alternating; the initrd is packed once beforehand;
#   then one boot of each under TCG -icount shift=0 (`--timeline`): guest instructions from
#   the entry to `main` and in the `fs` stage, the same on every run, and QEMU's wall time;
# - the disk (virtio-blk, FAT): sequential write (synced) and read of a $MIB MiB file
#   (examples/disk-io --roundtrip), and small files: create + write 1 KiB + sync_all, read,
#   remove, per second (--small $SMALL).
#
# The Linux VM (LINUX=0 skips it): Debian's kernel and a busybox initramfs
# (benches/linux-vm/lib.sh, as http.sh's VM) whose /init runs benches/storage-linux, the
# same workloads as a static std program (the same data pattern, the same table CRC-32):
# the 10 MB file read from the initramfs through a 64 KiB buffer; the disk image made the
# same way (`cargo uk disk create`, FAT), mounted vfat, the roundtrip with fsync and then
# the page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) so that the read is the
# device's, not O_DIRECT; the small files fsync'd one by one, read after the cache is
# dropped, removed. Same QEMU command as the unikernel's (machine, accelerator, CPU,
# memory, -drive ...,format=raw with QEMU's default cache=writeback, virtio-blk-device),
# booted right after it. A table gives unikernel, Linux and their ratio per row.
#
# - on the monitor (when /dev/kvm is usable; MONITOR=0 skips it): the disk figures with its
#   virtio-blk back end, page-cached and with --disk-direct (O_DIRECT). (Not the initrd's
#   10 MB read: under nested KVM it takes minutes of emulated guest code.) Smaller sizes ($MONITOR_MIB MiB, $MONITOR_SMALL files): where KVM is nested
#   and emulates guest kernel code (as on the development machine, ~1 us an instruction),
#   the guest's own work (the pattern, the CRC-32, FAT) dominates these figures, not the
#   device; on hardware KVM they measure the device.
#
# Caches go to target/bench-storage (never committed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/target/bench-storage}
RUNS=${RUNS:-5}
MIB=${MIB:-64}
SMALL=${SMALL:-500}
MEMORY=${MEMORY:-256}
LINUX=${LINUX:-1}
MONITOR=${MONITOR:-1}
MONITOR_MIB=${MONITOR_MIB:-4}
MONITOR_SMALL=${MONITOR_SMALL:-50}
PREPARE=${PREPARE:-0}
mkdir -p "$WORK"

echo "== building"
(cd "$ROOT/examples" && cargo build -q --release -p files -p disk-io)
# The runner's binary, called directly: `cargo run` would add its own checks to each boot.
cargo build -q --manifest-path "$ROOT/Cargo.toml" -p runner
UK=("$ROOT/target/debug/runner")
BIN="$ROOT/examples/target/x86_64-unknown-none/release"
"${UK[@]}" setup -q

# The initrd's one file: 10 MB of noise, packed once (newc, as the runner packs it).
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

if [ "$LINUX" = 1 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
        --manifest-path "$ROOT/Cargo.toml" -p storage-linux --target x86_64-unknown-linux-gnu
    # shellcheck source=benches/linux-vm/lib.sh
    . "$ROOT/benches/linux-vm/lib.sh"
    linux_vm_kernel "$WORK/linux" drivers/virtio/virtio drivers/virtio/virtio_ring \
        drivers/virtio/virtio_mmio drivers/block/virtio_blk fs/fat/fat fs/fat/vfat \
        fs/nls/nls_cp437 fs/nls/nls_ascii fs/nls/nls_utf8
    root=$(mktemp -d)
    linux_vm_root "$root" "$WORK/linux" sh mount umount insmod cat echo sleep seq mkdir sync reboot
    cp "$ROOT/target/x86_64-unknown-linux-gnu/release/storage-linux" "$root/bin/"
    cp "$WORK/files/big.bin" "$root/big.bin"
    cat >"$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in virtio_ring virtio virtio_mmio virtio_blk fat vfat nls_cp437 nls_ascii nls_utf8; do
    insmod /lib/modules/$module.ko
done
mib=64 small=500
for word in $(cat /proc/cmdline); do
    case "$word" in
        bench.mib=*) mib=${word#bench.mib=} ;;
        bench.small=*) small=${word#bench.small=} ;;
    esac
done
storage-linux throughput /big.bin
for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
mkdir -p /mnt
if mount -t vfat /dev/vda /mnt; then
    storage-linux roundtrip /mnt "$mib"
    storage-linux small /mnt "$small"
    umount /mnt
fi
echo "linux-vm: done"
reboot -f
INIT
    chmod +x "$root/init"
    linux_vm_pack "$root" "$WORK/linux/initrd.cpio.gz"
    rm -rf "$root"
    echo "Linux: $(cat "$WORK/linux/kernel-package"), initramfs $(stat -c %s "$WORK/linux/initrd.cpio.gz") bytes"
fi
[ "$PREPARE" = 1 ] && exit 0

# Every figure line, for the table at the end.
FIGURES=$WORK/figures.txt
: >"$FIGURES"

echo "== initrd: a 10 MB file"
"${UK[@]}" boot --accel tcg --memory 64 --timeout 300 -q --files "$WORK/files.cpio" \
    "$BIN/files" --throughput /big.bin | grep '^files: throughput' | tee -a "$FIGURES" || true

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
echo "-- guest instructions (TCG -icount shift=0, deterministic) and QEMU's wall time of that boot:"
instructions() {
    "${UK[@]}" boot --accel tcg --memory 64 -q --timeline "$@" "$BIN/files" 2>&1 | tr -d '\r' |
        awk '$1 == "fs" { fs = $3 } $1 == "main" { main = $2 } /^QEMU ran for/ { wall = $4 " " $5 }
             END { printf "entry->main %s instructions (fs stage %s), QEMU %s\n", main, fs, wall }'
}
echo "with a 10 MB initrd: $(instructions --files "$WORK/files.cpio")"
echo "without an initrd:   $(instructions)"

echo "== disk: $MIB MiB sequential, $SMALL small files (-m $MEMORY)"
rm -f "$WORK/disk.img"
"${UK[@]}" disk create "$WORK/disk.img" --size "$(( MIB * 2 ))MiB" >/dev/null
"${UK[@]}" boot --accel tcg --memory "$MEMORY" --timeout 600 -v --disk "$WORK/disk.img" \
    "$BIN/disk-io" --roundtrip "$MIB" 2>&1 | tr -d '\r' | grep '^disk-io:\|^cargo uk: qemu' | tee -a "$FIGURES" || true
"${UK[@]}" boot --accel tcg --memory "$MEMORY" --timeout 600 -q --disk "$WORK/disk.img" \
    "$BIN/disk-io" --small "$SMALL" | tr -d '\r' | grep '^disk-io:' | tee -a "$FIGURES" || true

if [ "$LINUX" = 1 ]; then
    echo "== the Linux VM: the same initrd file, $MIB MiB sequential, $SMALL small files"
    rm -f "$WORK/disk.img"
    "${UK[@]}" disk create "$WORK/disk.img" --size "$(( MIB * 2 ))MiB" >/dev/null
    # The unikernel's QEMU command (above, from the runner), with Linux's kernel and initrd.
    QEMU=(qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m "$MEMORY"
        -nodefaults -no-user-config -nographic -display none -serial stdio -no-reboot
        -kernel "$WORK/linux/vmlinuz" -initrd "$WORK/linux/initrd.cpio.gz"
        -append "console=ttyS0 quiet $(linux_vm_clock_args) panic=-1 reboot=t bench.mib=$MIB bench.small=$SMALL"
        -drive "file=$WORK/disk.img,if=none,id=disk0,format=raw" -device virtio-blk-device,drive=disk0)
    echo "linux: ${QEMU[*]}"
    timeout 1200 "${QEMU[@]}" </dev/null >"$WORK/linux.serial" 2>&1 || true
    tr -d '\r' <"$WORK/linux.serial" | grep '^storage-linux:' | tee -a "$FIGURES" || true
    grep -q "linux-vm: done" "$WORK/linux.serial" ||
        { echo "storage.sh: the Linux VM did not finish; its console:" >&2; tail -40 "$WORK/linux.serial" >&2; }
fi

echo "== unikernel vs Linux (same QEMU, same device, same run)"
python3 - "$FIGURES" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def figure(pattern):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else None
rows = [
    ("initrd: 10 MB file, 64 KiB reads", "MB/s",
     r"^files: throughput .*: read ([\d.]+) MB/s", r"^storage-linux: throughput .*: read ([\d.]+) MB/s"),
    ("disk: sequential write + sync", "MB/s",
     r"^disk-io: roundtrip .*: write ([\d.]+) MB/s", r"^storage-linux: roundtrip .*: write ([\d.]+) MB/s"),
    ("disk: sequential read", "MB/s",
     r"^disk-io: roundtrip .*, read ([\d.]+) MB/s", r"^storage-linux: roundtrip .*, read ([\d.]+) MB/s"),
    ("small files: create+write+sync", "/s",
     r"^disk-io: small files .*: create\+write\+sync ([\d.]+)/s", r"^storage-linux: small files .*: create\+write\+sync ([\d.]+)/s"),
    ("small files: read", "/s",
     r"^disk-io: small files .*, read ([\d.]+)/s", r"^storage-linux: small files .*, read ([\d.]+)/s"),
    ("small files: remove", "/s",
     r"^disk-io: small files .*, remove ([\d.]+)/s", r"^storage-linux: small files .*, remove ([\d.]+)/s"),
]
show = lambda v: "-" if v is None else f"{v:.1f}"
print(f"{'':34} {'unit':>5} {'unikernel':>10} {'Linux':>10} {'ratio':>7}")
for name, unit, uk, lx in rows:
    u, l = figure(uk), figure(lx)
    ratio = f"{u / l:.2f}x" if u and l else "-"
    print(f"{name:34} {unit:>5} {show(u):>10} {show(l):>10} {ratio:>7}")
print("ratio: unikernel / Linux (higher is better for the unikernel in every row)")
print("Guest code runs emulated on this host (TCG here; the nested KVM emulates it at about")
print("1 us an instruction): these MB/s and files/s are bound by the guest's CPU work (the")
print("data pattern, the CRC-32, the file system), not by the device.")
PY

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
