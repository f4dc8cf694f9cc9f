#!/usr/bin/env bash
# Builds the Linux VM of the HTTP benchmark: Debian's kernel and a minimal initramfs of
# busybox (static) and the baseline server (benches/http-linux, static), nothing else.
#
#   benches/linux-vm/build.sh OUT_DIR SERVER_BINARY
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initrd.cpio.gz. The kernel comes from Debian's
# package (apt-get download, unpacked, never installed); busybox from busybox-static
# (lib.sh has these steps, for storage.sh's VM too). Nothing downloaded is committed:
# OUT_DIR is a cache (target/ by default).
#
# The VM's /init loads the virtio modules (Debian builds them as modules), configures eth0
# from the kernel command line (bench.ip=ADDR/LEN) and execs the server on port 80.
set -euo pipefail

out=${1:?usage: build.sh OUT_DIR SERVER_BINARY}
server=${2:?usage: build.sh OUT_DIR SERVER_BINARY}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# shellcheck source=benches/linux-vm/lib.sh
. "$(dirname "$0")/lib.sh"
linux_vm_kernel "$out" drivers/virtio/virtio drivers/virtio/virtio_ring \
    drivers/virtio/virtio_mmio net/core/failover drivers/net/net_failover drivers/net/virtio_net

root=$(mktemp -d)
linux_vm_root "$root" "$out" sh mount insmod ip cat echo sleep
cp "$server" "$root/bin/http-linux"
cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in virtio_ring virtio virtio_mmio failover net_failover virtio_net; do
    insmod /lib/modules/$module.ko
done
address=
for word in $(cat /proc/cmdline); do
    case "$word" in bench.ip=*) address=${word#bench.ip=} ;; esac
done
ip link set lo up
ip addr add "$address" dev eth0
ip link set eth0 up
echo "linux-vm: eth0 is $address"
exec /bin/http-linux 80
INIT
chmod +x "$root/init"
linux_vm_pack "$root" "$out/initrd.cpio.gz"
rm -rf "$root"
echo "linux-vm: $(cat "$out/kernel-package"), initramfs $(du -h "$out/initrd.cpio.gz" | cut -f1)"
