#!/bin/sh
# Runs inside the VM lane's guest as a systemd unit: mounts the host's
# checkout (virtiofs tag "cradle"), runs the lane's suites with the host's
# node, reports on this unit's tty (the second serial port, which the host
# reads) and powers the guest off.
set -u
modprobe virtio_pci && modprobe virtiofs && modprobe tun
mkdir -p /mnt/cradle
status=1
if mount -t virtiofs cradle /mnt/cradle; then
  cd /mnt/cradle || exit 1
  # Extra test filters from the kernel command line: cradle.filter=a,b
  filters=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^cradle\.filter=//p' | tr ',' ' ')
  # shellcheck disable=SC2086
  CRADLE_IN_VM=1 /usr/local/bin/node dist/test/run.js ${filters:-vm/}
  status=$?
else
  echo "cannot mount the checkout over virtiofs"
fi
echo "cradle-vm-lane: exit $status"
systemctl --no-block poweroff
