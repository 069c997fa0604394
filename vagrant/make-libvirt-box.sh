#!/bin/sh
# Builds a Debian box for vagrant-libvirt with nothing downloaded but Debian packages (from this
# host's apt sources), and adds it to Vagrant: for machines that cannot reach Vagrant Cloud.
#
#   sudo vagrant/make-libvirt-box.sh [BOX-NAME] [SUITE]     # default fissure/bookworm bookworm
#
# mmdebstrap root filesystem -> ext4 image (mke2fs -d, no mounting) -> qcow2 -> box -> vagrant
# box add. The disk has no partition table and no boot loader: the VM boots the box's kernel
# directly (vagrant-libvirt's kernel/initrd/cmd_line), which the box's own Vagrantfile names.
# Those two files are kept in /var/lib/fissure/boxes/<box>/, where libvirt's qemu user can read
# them (it cannot read root's ~/.vagrant.d).
#
# The box has what Vagrant expects of a base box (user vagrant with passwordless sudo and
# Vagrant's insecure public key, which Vagrant replaces at the first `up`; ifupdown with eth0 on
# DHCP for the management network) and what Fissure's faults need (iproute2, iptables, procps,
# faketime). Each VM makes its own SSH host keys at first boot.
#
# Needs root, mmdebstrap, e2fsprogs, qemu-utils (qemu-img) and vagrant.
set -eu

name=${1:-fissure/bookworm}
suite=${2:-bookworm}
size=${FISSURE_BOX_SIZE:-4G}
keep=/var/lib/fissure/boxes/$(printf '%s' "$name" | tr '/' '_')

die() { echo "make-libvirt-box: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap --mode=root and $keep need it)"
for tool in mmdebstrap mke2fs qemu-img vagrant; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install -y mmdebstrap e2fsprogs qemu-utils vagrant"
done

# Vagrant's insecure public key, from wherever this vagrant is installed.
insecure=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
               /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub \
               /opt/vagrant/embedded/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n 1)
[ -n "$insecure" ] || die "cannot find Vagrant's insecure public key (keys/vagrant.pub in vagrant's gem)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

# The apt sources the host uses (its mirror or registry), as the node image does.
mirror=
if [ -f /etc/apt/sources.list.d/debian.sources ]; then mirror=/etc/apt/sources.list.d/debian.sources
elif grep -qs '^deb ' /etc/apt/sources.list; then mirror=/etc/apt/sources.list; fi

# eth0 (vagrant-libvirt's management network) on DHCP with systemd-networkd, which Vagrant's
# Debian guest support also uses for the private network (eth1): ifupdown's start-up waits for
# udev to settle and its dhclient is slow, about a minute more per boot under emulation.
cat > "$work/eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4
EOF
cat > "$work/hostkeys.service" <<'EOF'
[Unit]
Description=Make this VM's own SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
EOF
# One ed25519 host key, as in the node image: made in milliseconds, where `ssh-keygen -A`'s
# RSA key takes half a minute under emulation.
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' > "$work/hostkey.conf"
# The initramfs only needs to find /dev/vda: the virtio disk and ext4. MODULES=most (Debian's
# default) makes a 36 MB initramfs that takes half a minute to unpack and coldplug under
# emulation.
printf 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n' > "$work/initramfs-modules"

echo "make-libvirt-box: building the $suite root filesystem"
# shellcheck disable=SC2086
mmdebstrap --mode=root --variant=minbase \
    --include=linux-image-amd64,systemd-sysv,udev,kmod,openssh-server,sudo,iproute2,iptables,procps,faketime \
    --customize-hook='echo "/dev/vda / ext4 errors=remount-ro 0 1" > "$1/etc/fstab"' \
    --customize-hook='echo fissure-node > "$1/etc/hostname"' \
    --customize-hook="upload $work/eth0.network /etc/systemd/network/10-eth0.network" \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
    --customize-hook="upload $work/hostkey.conf /etc/ssh/sshd_config.d/fissure-hostkey.conf" \
    --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer' \
    --customize-hook="upload $work/initramfs-modules /etc/initramfs-tools/modules" \
    --customize-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/fissure"; chroot "$1" update-initramfs -u -k all' \
    --customize-hook="upload $work/hostkeys.service /etc/systemd/system/fissure-hostkeys.service" \
    --customize-hook='mkdir -p "$1/etc/systemd/system/multi-user.target.wants"; ln -s /etc/systemd/system/fissure-hostkeys.service "$1/etc/systemd/system/multi-user.target.wants/"' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    --customize-hook='chroot "$1" useradd -m -s /bin/bash vagrant' \
    --customize-hook='echo "vagrant ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/vagrant"; chmod 440 "$1/etc/sudoers.d/vagrant"' \
    --customize-hook="mkdir -p \"\$1/home/vagrant/.ssh\"; cp $insecure \"\$1/home/vagrant/.ssh/authorized_keys\"" \
    --customize-hook='chroot "$1" chown -R vagrant:vagrant /home/vagrant/.ssh; chmod 700 "$1/home/vagrant/.ssh"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" "$root" $mirror

# DNS through the management network's dnsmasq (vagrant-libvirt's default 192.168.121.0/24):
# nothing on the VM manages resolv.conf, and apt needs it only for what the box lacks.
echo "nameserver 192.168.121.1" > "$root/etc/resolv.conf"

echo "make-libvirt-box: kernel and initrd into $keep"
mkdir -p "$keep"
cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)" "$keep/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -n 1)" "$keep/initrd.img"
chmod 644 "$keep/vmlinuz" "$keep/initrd.img"

# Whether KVM boots this kernel here: a /dev/kvm can exist and still hang every guest (some
# nested setups), and vagrant-libvirt asks for KVM unless told otherwise. The kernel is booted
# without a root filesystem; reaching "Kernel panic ... VFS" proves it ran to the end of its
# start-up. Where it does not, the VMs use qemu's software emulation (TCG). The answer goes into
# the box's Vagrantfile and into $driver_file, which Fissure's Vagrantfile reads for any box.
# $FISSURE_LIBVIRT_DRIVER (kvm or qemu) skips the probe.
driver_file=/var/lib/fissure/libvirt-driver
kvm_boots() {
    [ -e /dev/kvm ] && command -v qemu-system-x86_64 >/dev/null || return 1
    timeout 30 qemu-system-x86_64 -accel kvm -m 256 -nographic -no-reboot -monitor none \
        -kernel "$keep/vmlinuz" -append "console=ttyS0 panic=-1" \
        </dev/null >"$work/kvm-probe.log" 2>&1 || true
    grep -aq "Kernel panic" "$work/kvm-probe.log"
}
driver=${FISSURE_LIBVIRT_DRIVER:-}
if [ -z "$driver" ]; then
    if kvm_boots; then driver=kvm; else driver=qemu; fi
    echo "make-libvirt-box: KVM probe: the VMs will use $driver$([ "$driver" = qemu ] && echo ' (software emulation: KVM is missing or does not boot a kernel here)')"
fi
case $driver in kvm|qemu) ;; *) die "FISSURE_LIBVIRT_DRIVER must be kvm or qemu, not $driver" ;; esac
echo "$driver" > "$driver_file"

echo "make-libvirt-box: ext4 ($size) -> qcow2"
mke2fs -q -t ext4 -L root -d "$root" "$work/root.ext4" "$size"
qemu-img convert -c -O qcow2 "$work/root.ext4" "$work/box.img"
gigabytes=$(echo "$size" | tr -dc 0-9)
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$gigabytes" > "$work/metadata.json"
cat > "$work/Vagrantfile" <<EOF
# Made by Fissure's make-libvirt-box.sh: boots the kernel kept on the host (no boot loader).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "$driver"
    lv.kernel = "$keep/vmlinuz"
    lv.initrd = "$keep/initrd.img"
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  end
end
EOF
tar -C "$work" -czf "$work/fissure.box" metadata.json Vagrantfile box.img
# vagrant-libvirt copies a box into libvirt's `default` pool once per box version and date, so a
# rebuilt box would leave the old copy there for good: remove the copies of this box that no
# domain uses.
if command -v virsh >/dev/null && virsh -c qemu:///system version >/dev/null 2>&1; then
    prefix="$(printf '%s' "$name" | sed 's|/|-VAGRANTSLASH-|g')_vagrant_box_image_"
    used=$(for d in $(virsh -q -c qemu:///system list --all --name); do
               virsh -c qemu:///system dumpxml "$d"; done)
    for vol in $(virsh -q -c qemu:///system vol-list default 2>/dev/null | awk '{print $1}'); do
        case $vol in "$prefix"*) ;; *) continue ;; esac
        case $used in
            *"$vol"*) echo "make-libvirt-box: keeping the old box volume $vol (a VM uses it)" ;;
            *) virsh -q -c qemu:///system vol-delete "$vol" --pool default >/dev/null &&
                   echo "make-libvirt-box: removed the old box volume $vol" ;;
        esac
    done
fi
# From /, so no Vagrantfile of the current folder is loaded.
(cd / && vagrant box add --force --name "$name" --provider libvirt "$work/fissure.box")
echo "make-libvirt-box: added box $name (libvirt); use it as the cluster's box"
