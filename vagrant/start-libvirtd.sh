#!/bin/sh
# Starts libvirt by hand where there is no systemd (containers, CI runners), as the libvirt
# provider of `fissure --backend vagrant` needs it. Idempotent: what runs is left running, what
# exists is left alone.
#
#   sudo vagrant/start-libvirtd.sh
#
# Starts virtlogd (libvirtd hands each VM's console log to it) and libvirtd, then makes sure of
# the `default` storage pool (a directory, /var/lib/libvirt/images), where vagrant-libvirt puts
# box images and VM disks. vagrant-libvirt makes its own networks (the management network
# vagrant-libvirt, 192.168.121.0/24, and each cluster's fissure-<name>); libvirt's own `default`
# network is started too when it is defined, as other tools expect it.
#
# Needs root and libvirt-daemon-system (apt-get install -y libvirt-daemon-system qemu-system-x86).
set -eu

die() { echo "start-libvirtd: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v libvirtd >/dev/null || die "libvirtd is missing: apt-get install -y libvirt-daemon-system qemu-system-x86"

running() { pgrep -x "$1" >/dev/null 2>&1; }

mkdir -p /run/libvirt /var/lib/libvirt/images /var/log/libvirt/qemu
if ! running virtlogd; then
    echo "start-libvirtd: starting virtlogd"
    virtlogd -d
fi
if ! running libvirtd; then
    echo "start-libvirtd: starting libvirtd"
    libvirtd -d
fi

# libvirtd answers a moment after it forks.
tries=0
until virsh -c qemu:///system version >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || die "libvirtd does not answer at qemu:///system (see /var/log/libvirt/)"
    sleep 0.2
done

virsh() { command virsh -q -c qemu:///system "$@"; }

if ! virsh pool-info default >/dev/null 2>&1; then
    echo "start-libvirtd: defining the default storage pool (/var/lib/libvirt/images)"
    virsh pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
fi
virsh pool-autostart default >/dev/null 2>&1 || true
if ! virsh pool-info default | grep -q '^State: *running'; then
    virsh pool-start default >/dev/null
fi

if virsh net-info default >/dev/null 2>&1; then
    virsh net-autostart default >/dev/null 2>&1 || true
    if ! virsh net-info default | grep -q '^Active: *yes'; then
        virsh net-start default >/dev/null || echo "start-libvirtd: the default network would not start (not needed by Fissure)" >&2
    fi
fi

echo "start-libvirtd: $(command virsh -c qemu:///system version | grep -i 'running hypervisor' | sed 's/^ *//')"
