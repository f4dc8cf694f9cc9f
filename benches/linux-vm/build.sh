#!/usr/bin/env bash
# Builds the Linux VM of the HTTP benchmark: Debian's kernel and a minimal initramfs of
# busybox (static) and the baseline server (benches/http-linux, static), nothing else.
#
#   benches/linux-vm/build.sh OUT_DIR SERVER_BINARY
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initrd.cpio.gz. The kernel comes from Debian's
# package (apt-get download, unpacked, never installed); busybox from busybox-static.
# Nothing downloaded is committed: OUT_DIR is a cache (target/ by default).
#
# The VM's /init loads the virtio modules (Debian builds them as modules), configures eth0
# from the kernel command line (bench.ip=ADDR/LEN) and execs the server on port 80.
set -euo pipefail

out=${1:?usage: build.sh OUT_DIR SERVER_BINARY}
server=${2:?usage: build.sh OUT_DIR SERVER_BINARY}
mkdir -p "$out"
out=$(cd "$out" && pwd)

need() { command -v "$1" >/dev/null || { echo "linux-vm: $1 is missing ($2)" >&2; exit 1; }; }
need apt-get "Debian's package manager"
need dpkg-deb "dpkg"

busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    else
        echo "linux-vm: needs busybox-static (apt-get install busybox-static)" >&2
        exit 1
    fi
fi

# Debian's current kernel for amd64: the package linux-image-amd64 depends on.
if [ ! -f "$out/vmlinuz" ] || [ ! -d "$out/modules" ]; then
    package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$package" ] || { echo "linux-vm: cannot find Debian's kernel package (apt-get update?)" >&2; exit 1; }
    download=$(mktemp -d)
    (cd "$download" && apt-get download -q "$package" >/dev/null 2>&1)
    dpkg-deb -x "$download"/*.deb "$download/root"
    cp "$download"/root/boot/vmlinuz-* "$out/vmlinuz"
    rm -rf "$out/modules"
    mkdir -p "$out/modules"
    for module in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko \
        drivers/virtio/virtio_mmio.ko net/core/failover.ko drivers/net/net_failover.ko \
        drivers/net/virtio_net.ko; do
        found=$(find "$download"/root/lib/modules/*/kernel -path "*/$module*" | head -1)
        [ -n "$found" ] || { echo "linux-vm: $package has no $module" >&2; exit 1; }
        case "$found" in
            *.xz) xz -dc "$found" >"$out/modules/$(basename "$module")" ;;
            *.zst) zstd -qdc "$found" >"$out/modules/$(basename "$module")" ;;
            *) cp "$found" "$out/modules/" ;;
        esac
    done
    echo "$package" >"$out/kernel-package"
    rm -rf "$download"
fi

root=$(mktemp -d)
mkdir -p "$root"/{bin,sbin,proc,sys,dev,lib/modules}
cp "$busybox" "$root/bin/busybox"
for applet in sh mount insmod ip cat echo sleep; do
    ln -s busybox "$root/bin/$applet"
done
cp "$out"/modules/*.ko "$root/lib/modules/"
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
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$out/initrd.cpio.gz")
rm -rf "$root"
echo "linux-vm: $(cat "$out/kernel-package"), initramfs $(du -h "$out/initrd.cpio.gz" | cut -f1)"
