# The Linux VM's parts, for the benchmarks that compare a unikernel with Linux under the
# same QEMU: sourced, not run (`. benches/linux-vm/lib.sh`). build.sh (http.sh's VM) and
# storage.sh each assemble their own initramfs from these.
#
# - linux_vm_kernel OUT MODULE...: Debian's current kernel for amd64 as OUT/vmlinuz, and
#   each MODULE (a path under the package's lib/modules/*/kernel/, without .ko) as
#   OUT/modules/<name>.ko, decompressed; OUT/kernel-package names the package. Unpacked
#   from the package (apt-get download), never installed; fetched again only when a module
#   asked for is missing.
# - linux_vm_root ROOT OUT APPLET...: an initramfs tree in ROOT: static busybox (from
#   busybox-static, installed when missing and root) with links for the APPLETs, /proc,
#   /sys, /dev, and OUT/modules/*.ko in /lib/modules. The caller adds its program and /init.
# - linux_vm_pack ROOT FILE: ROOT as a gzip'd newc cpio archive, the kernel's initramfs.
# - linux_vm_clock_args: kernel command-line words for a VM under QEMU TCG, whose TSC is the
#   host's: its frequency given (tsc_early_khz, from /proc/cpuinfo) and trusted. Without
#   them a loaded host fails the PIT calibration ("tsc: Unable to calibrate against PIT"),
#   and the boot hangs with no clock source.
#
# Nothing downloaded is committed: OUT is a cache (under target/).

linux_vm_need() {
    command -v "$1" >/dev/null || { echo "linux-vm: $1 is missing ($2)" >&2; return 1; }
}

linux_vm_kernel() {
    local out=$1 module missing=() package download found
    shift
    linux_vm_need apt-get "Debian's package manager" || return 1
    linux_vm_need dpkg-deb "dpkg" || return 1
    mkdir -p "$out/modules"
    for module in "$@"; do
        [ -f "$out/modules/$(basename "$module").ko" ] || missing+=("$module")
    done
    [ -f "$out/vmlinuz" ] && [ ${#missing[@]} -eq 0 ] && return 0
    # Debian's current kernel for amd64: the package linux-image-amd64 depends on.
    package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$package" ] || { echo "linux-vm: cannot find Debian's kernel package (apt-get update?)" >&2; return 1; }
    download=$(mktemp -d)
    (cd "$download" && apt-get download -q "$package" >/dev/null 2>&1)
    dpkg-deb -x "$download"/*.deb "$download/root"
    cp "$download"/root/boot/vmlinuz-* "$out/vmlinuz"
    for module in "$@"; do
        found=$(find "$download"/root/lib/modules/*/kernel -path "*/$module.ko*" | head -1)
        [ -n "$found" ] || { echo "linux-vm: $package has no $module" >&2; rm -rf "$download"; return 1; }
        case "$found" in
            *.xz) xz -dc "$found" >"$out/modules/$(basename "$module").ko" ;;
            *.zst) zstd -qdc "$found" >"$out/modules/$(basename "$module").ko" ;;
            *) cp "$found" "$out/modules/$(basename "$module").ko" ;;
        esac
    done
    echo "$package" >"$out/kernel-package"
    rm -rf "$download"
}

linux_vm_root() {
    local root=$1 out=$2 busybox=/bin/busybox applet
    shift 2
    if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
        if [ "$(id -u)" = 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
        else
            echo "linux-vm: needs busybox-static (apt-get install busybox-static)" >&2
            return 1
        fi
    fi
    mkdir -p "$root"/{bin,sbin,proc,sys,dev,lib/modules}
    cp "$busybox" "$root/bin/busybox"
    for applet in "$@"; do
        ln -s busybox "$root/bin/$applet"
    done
    cp "$out"/modules/*.ko "$root/lib/modules/"
}

linux_vm_pack() {
    (cd "$1" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$2")
}

linux_vm_clock_args() {
    local khz
    khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
    echo "no_timer_check${khz:+ tsc_early_khz=$khz tsc=reliable}"
}
