#!/usr/bin/env bash
# Builds the guest for the VM lane: a Debian 12 system booting straight into
# systemd with a pure cgroup v2 hierarchy (what this host, a cgroup v1 hybrid
# without systemd, cannot offer). Output in OUT_DIR: `vmlinuz` and `disk.img`
# (ext4, attached read-only-snapshot by the lane). Only Debian packages are
# used; the host's node binary is copied in because Debian's node 18 is too
# old and too slow under emulation.
#
# usage: build-image.sh OUT_DIR
set -euo pipefail
out=${1:?usage: build-image.sh OUT_DIR}
log() { printf 'vm-image: %s\n' "$*" >&2; }

work=$(mktemp -d /var/tmp/cradle-vm-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# What the lane's tests run in the guest: systemd as PID 1, the container
# stack under test, what the tests use to build and serve images, and
# apparmor_parser (the guest kernel's default LSM is AppArmor), and CRIU for
# checkpoints (the host's kernel is too new for Debian's CRIU 3.17).
packages=(
  systemd systemd-sysv dbus kmod procps iproute2 iptables util-linux
  runc crun conmon containernetworking-plugins catatonit
  busybox-static skopeo docker-registry ca-certificates apparmor criu
)
log "debootstrapping the guest (${#packages[@]} packages)"
mmdebstrap --quiet --variant=minbase --mode=root \
  --include="$(IFS=,; echo "${packages[*]}")" \
  bookworm "$root" "deb http://deb.debian.org/debian bookworm main" >/dev/null

# The cloud kernel has NVMe and ext4 built in, so no initramfs is needed.
# Unpacked by hand: dpkg -x would replace the rootfs's /lib symlink.
apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1 || apt-get update -qq
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1)
log "unpacking $kernel_pkg"
chmod 0755 "$work"
(cd "$work" && apt-get download -qq "$kernel_pkg")
dpkg-deb --fsys-tarfile "$work"/linux-image-*.deb | tar -x -C "$root" --keep-directory-symlink
kver=${kernel_pkg#linux-image-}
chroot "$root" depmod "$kver"

install -m 0755 "$(command -v node)" "$root/usr/local/bin/node"

# A fixed machine id (an empty one makes systemd-firstboot prompt), no
# gettys, and one unit that runs the lane and powers off.
echo 0f5c5a1e0d6b4a7c9e2d3b4a5c6d7e8f > "$root/etc/machine-id"
echo cradle-vm > "$root/etc/hostname"
for unit in getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
install -m 0755 "$(dirname "$0")/guest-lane.sh" "$root/usr/local/sbin/cradle-vm-lane"
cat > "$root/etc/systemd/system/cradle-vm-lane.service" <<'EOF'
[Unit]
Description=Cradle VM lane tests
After=dbus.service local-fs.target
Wants=dbus.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/cradle-vm-lane
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS1
# The lane kills only what it started; systemd must not kill the scopes the
# tests' containers live in when this unit ends (the guest powers off anyway).
KillMode=process

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/cradle-vm-lane.service "$root/etc/systemd/system/multi-user.target.wants/cradle-vm-lane.service"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

log "writing the disk image"
mkdir -p "$out"
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
mkfs.ext4 -q -F -L cradle-vm -d "$root" "$work/disk.img" 2G
mv "$work/vmlinuz" "$out/vmlinuz"
mv "$work/disk.img" "$out/disk.img"
log "done: $out"
