#!/bin/sh
# Builds (once) what the vhost-user-blk guest tests boot with QEMU's TCG:
# Debian's cloud kernel and a busybox initramfs with the virtio modules,
# both unpacked from Debian packages into a cache folder.  Nothing is
# installed into /.
#
#   fixture.sh CACHE_DIR
#
# leaves CACHE_DIR/vmlinuz and CACHE_DIR/initrd.gz.  The initramfs's /init
# loads the modules and runs /test.sh (which the test appends as a second
# cpio archive), then prints "GUEST-DONE <status>" and powers off.
# Exits 1 with a sentence on stderr if something cannot be had.
set -eu
C=$1
mkdir -p "$C"
exec 9>"$C/.lock"
flock 9
[ -f "$C/initrd.gz" ] && [ -f "$C/vmlinuz" ] && exit 0

fail() {
    echo "vhost-guest fixture: $*" >&2
    exit 1
}
command -v apt-get >/dev/null || fail "apt-get is needed to fetch the kernel package"
command -v dpkg >/dev/null || fail "dpkg is needed to unpack the kernel package"
W=$(mktemp -d "$C/build.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
KPKG=$(apt-cache search --names-only '^linux-image-[0-9.-]+-cloud-amd64-unsigned$' |
    sort -V | tail -1 | cut -d' ' -f1)
[ -n "$KPKG" ] || fail "no linux-image-*-cloud-amd64-unsigned package in apt's lists (run apt-get update)"
apt-get download -qq "$KPKG" busybox-static >/dev/null 2>&1 ||
    fail "apt-get download $KPKG busybox-static failed (no network or apt source?)"
for f in *.deb; do dpkg -x "$f" root; done
K=$(ls root/lib/modules)
cp root/boot/vmlinuz-* vmlinuz
mkdir -p initrd/bin initrd/mod
cp root/bin/busybox initrd/bin/
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
for m in $MODS; do
    f=$(find root/lib/modules/$K -name "$m.ko*")
    [ -n "$f" ] || fail "module $m not in $KPKG"
    case $f in
    *.xz) xz -dc "$f" >initrd/mod/$m.ko ;;
    *.zst) zstd -dqc "$f" >initrd/mod/$m.ko ;;
    *) cp "$f" initrd/mod/ ;;
    esac
done
cat >initrd/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /tmp /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $MODS; do insmod /mod/\$m.ko; done
# The disks appear asynchronously: wait (bounded) until they settle.
n=0
while [ \$n -lt 50 ]; do
    c=\$(ls /sys/block | grep -c '^vd')
    [ "\$c" = "\$last" ] && [ "\$c" != 0 ] && break
    last=\$c
    n=\$((n + 1))
    sleep 0.2
done
if [ -x /test.sh ]; then
    /test.sh
    echo "GUEST-DONE \$?"
else
    echo "GUEST-DONE 127 (no /test.sh)"
fi
poweroff -f
INIT
chmod +x initrd/init
(cd initrd && find . | ../root/bin/busybox cpio -o -H newc 2>/dev/null | gzip) >initrd.gz
mv vmlinuz initrd.gz "$C/"
