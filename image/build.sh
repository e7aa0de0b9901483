#!/bin/bash
# Build the KILO.7 appliance image: Debian 12 from Debian's archive (mmdebstrap), the
# kilo7 role applied in image mode through Ansible's chroot connection, a UEFI boot
# loader, and an MBR disk with two partitions:
#   1 KILO7-BOOT  FAT32: the UEFI boot loader (on arm64 also a Raspberry Pi's firmware,
#                 kernel and device trees) and kilo7-settings.txt, the file the owner
#                 edits before the first boot
#   2 kilo7-root  ext4: the system, grown to the disk on the first boot
# Nothing secret is in it: broker passwords, the robot's CA, SSH host keys and the
# machine id are all made on the robot at its first boot.
#
# Usage: image/build.sh ARCH DEB OUT_DIR   (ARCH: amd64 or arm64; run as root)
# arm64 is built on an x86_64 machine through qemu-user (binfmt_misc, registered here if
# it is not) and boots a Raspberry Pi 3 or 4 (its firmware from raspi-firmware) as well
# as any UEFI arm64 machine. PyPI has no arm64 ROS 2 wheels, so its role runs with
# kilo7_ros_provider: none: the nodes need an underlay of the owner's at /opt/ros.
# Writes OUT_DIR/kilo7-VERSION-ARCH.img and .img.xz, and prints what each step took.
set -euo pipefail

arch=${1:?usage: build.sh amd64|arm64 DEB OUT_DIR}
deb=$(realpath "${2:?the kilo7 .deb (make deb)}")
out_dir=$(realpath -m "${3:?output directory}")
case "$arch" in
  amd64) efi_target=x86_64-efi efi_name=BOOTX64.EFI console=ttyS0,115200
         boot_type=ef kernel=linux-image-amd64 arch_packages=() ros_provider=wheels ;;
  # A Raspberry Pi's firmware reads a FAT partition of type 0x0c; UEFI finds its loader
  # on any FAT. The Pi's Wi-Fi needs its firmware from non-free-firmware.
  arm64) efi_target=arm64-efi efi_name=BOOTAA64.EFI console=ttyAMA0,115200
         boot_type=c kernel=linux-image-arm64
         arch_packages=(raspi-firmware firmware-brcm80211) ros_provider=none ;;
  *) echo "ARCH must be amd64 or arm64, not $arch" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "build.sh makes a root filesystem: run it as root" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
version=$(sed -n '1s/^kilo7 (\(.*\)).*/\1/p' "$repo/packaging/debian/changelog")
image="$out_dir/kilo7-$version-$arch.img"
ansible_bin=${ANSIBLE_BIN:-$repo/.venv-ansible/bin}
cache_dir=${KILO7_IMAGE_CACHE:-$repo/build/image}
# Room left on the root filesystem as built; the first boot grows it to the disk.
root_slack_mib=384
boot_mib=256

work=$(mktemp -d /var/tmp/kilo7-image.XXXXXX)
rootfs="$work/rootfs"
mounted=()
cleanup() {
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" || true; done
  # Never delete through a mount that is still there (a bound /dev is the host's).
  if ! findmnt -rno TARGET | grep -q "^$work/"; then rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT

# Each step's name as it starts, and what it took once it is over ("took").
step_began=$SECONDS step_name=
step() {
  [ -z "$step_name" ] || echo "image: $step_name took $((SECONDS - step_began)) s" >&2
  step_began=$SECONDS step_name=$1
  [ -z "$step_name" ] || echo "image: $step_name" >&2
}

step "the base system: Debian 12 $arch from $mirror (mmdebstrap)"
# What the appliance needs beyond minbase: a kernel and boot, systemd's network and time,
# SSH for the owner, Wi-Fi, growing the root, Python for Ansible and the nodes.
packages=(
  systemd systemd-sysv systemd-timesyncd dbus udev kmod "$kernel" initramfs-tools
  "grub-efi-$arch-bin" e2fsprogs dosfstools fdisk cloud-guest-utils
  openssh-server sudo wpasupplicant iproute2 iputils-ping netbase tzdata
  python3 python3-apt python3-venv ca-certificates procps less "${arch_packages[@]}"
)
if [ "$arch" != amd64 ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-aarch64" ]; then
  # The chroot's programs run through qemu-user (qemu-user-static, binfmt-support).
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64
fi
# Kept between builds, named by what went into it (make clean drops it).
base="$cache_dir/base-$arch-$(echo "$mirror ${packages[*]}" | sha256sum | cut -c1-12).tar"
if [ ! -f "$base" ]; then
  mkdir -p "$cache_dir"
  mmdebstrap --variant=minbase --format=tar --architectures="$arch" \
    --components=main,non-free-firmware \
    --include="$(IFS=,; echo "${packages[*]}")" bookworm "$base.part" "$mirror" >&2
  mv "$base.part" "$base"
else
  echo "image: reusing $base" >&2
fi
mkdir "$rootfs"
tar -C "$rootfs" --xattrs --xattrs-include='*' -xpf "$base"
mkdir -p "$rootfs/boot/firmware"

step "the kilo7 role in image mode (chroot)"
# The host's extra CAs (a TLS-inspecting proxy) for apt and pip in the chroot, and its
# resolver; both taken out again below.
extra_cas=()
for ca in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$ca" ] || continue
  cp "$ca" "$rootfs/usr/local/share/ca-certificates/"
  extra_cas+=("$(basename "$ca")")
done
[ ${#extra_cas[@]} -eq 0 ] || chroot "$rootfs" update-ca-certificates >&2
cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc" && mounted+=("$rootfs/proc")
mount -t sysfs sys "$rootfs/sys" && mounted+=("$rootfs/sys")
mount --bind /dev "$rootfs/dev" && mounted+=("$rootfs/dev")
# Nothing may start in the chroot (the role knows image mode; package scripts do not).
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" apt-get update -q >&2  # the base keeps no package lists
ANSIBLE_ROLES_PATH="$repo/ansible/roles" ANSIBLE_NOCOLOR=1 ANSIBLE_STDOUT_CALLBACK=default \
  "$ansible_bin/ansible-playbook" -i "$here/inventory.yml" "$repo/ansible/site.yml" \
  -e "ansible_host=$rootfs" -e "kilo7_package_file=$deb" -e "kilo7_package_version=$version" \
  -e "kilo7_ros_provider=$ros_provider" >&2

step "the appliance's own files: first boot, network, SSH, boot loader"
# systemd-resolved takes /etc/resolv.conf over: installed last, once nothing in the
# chroot needs the network any more.
chroot "$rootfs" apt-get install -y -q --no-install-recommends systemd-resolved >&2
cp -r "$here/rootfs/." "$rootfs/"
chmod 0440 "$rootfs/etc/sudoers.d/kilo7-operator"
chroot "$rootfs" useradd --create-home --shell /bin/bash --groups sudo kilo
chroot "$rootfs" systemctl enable systemd-networkd systemd-resolved systemd-timesyncd \
  kilo7-firstboot.service >&2
echo kilo7 > "$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkilo7\n::1\tlocalhost ip6-localhost\n' \
  > "$rootfs/etc/hosts"
printf 'LABEL=kilo7-root\t/\text4\tdefaults,noatime\t0\t1\n%s\n' \
  "LABEL=KILO7-BOOT	/boot/firmware	vfat	umask=0077,nofail	0	2" > "$rootfs/etc/fstab"
cp "$here/kilo7-settings.txt" "$rootfs/boot/firmware/kilo7-settings.txt"
# The boot loader: GRUB with its config inside, finding the root by its label and
# booting the kernel Debian's packages keep at /vmlinuz (so kernel updates just work).
sed -e "s|@CONSOLE@|$console|" "$here/grub.cfg" > "$rootfs/tmp/grub.cfg"
mkdir -p "$rootfs/boot/firmware/EFI/BOOT"
chroot "$rootfs" grub-mkstandalone --format="$efi_target" \
  --output="/boot/firmware/EFI/BOOT/$efi_name" \
  --modules="part_msdos ext2 fat search search_label linux normal" \
  "boot/grub/grub.cfg=/tmp/grub.cfg" >&2
if [ "$arch" = arm64 ]; then
  # A Raspberry Pi boots without GRUB: its firmware reads config.txt and cmdline.txt,
  # which raspi-firmware's kernel hook writes (with the kernel, initramfs and device
  # trees) into /boot/firmware at every kernel update; here once, naming the root.
  printf 'ROOTPART="LABEL=kilo7-root"\nCONSOLES="tty0 ttyS1,115200"\n' \
    >> "$rootfs/etc/default/raspi-firmware"
  chroot "$rootfs" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware >&2
fi

step "what must not be in an image: host keys, machine id, the build's CAs and caches"
rm -f "$rootfs"/etc/ssh/ssh_host_* "$rootfs/usr/sbin/policy-rc.d" "$rootfs/var/lib/dbus/machine-id"
: > "$rootfs/etc/machine-id"
for ca in "${extra_cas[@]}"; do rm -f "$rootfs/usr/local/share/ca-certificates/$ca"; done
[ ${#extra_cas[@]} -eq 0 ] || chroot "$rootfs" update-ca-certificates --fresh >&2
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
  "$rootfs"/var/cache/kilo7/* "$rootfs"/root/.ansible "$rootfs"/root/.cache
find "$rootfs/var/log" -type f -delete
for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[$i]}"; done
mounted=()

step "filesystems and the disk"
mkdir -p "$out_dir"
# The boot partition's files move into the FAT image; the root keeps an empty mount point.
root_mib=$(( $(du -sm --exclude=./boot/firmware "$rootfs" | cut -f1) * 115 / 100 + root_slack_mib ))
mkfs.vfat -C -F 32 -n KILO7-BOOT "$work/boot.img" $((boot_mib * 1024)) >&2
mcopy -s -i "$work/boot.img" "$rootfs"/boot/firmware/* ::/
find "$rootfs/boot/firmware" -mindepth 1 -delete
mke2fs -q -t ext4 -L kilo7-root -d "$rootfs" "$work/root.img" "${root_mib}M"
rm -f "$image"
truncate -s $(( (1 + boot_mib + root_mib) * 1024 * 1024 )) "$image"
printf 'label: dos\nstart=1MiB, size=%dMiB, type=%s, bootable\nstart=%dMiB, type=83\n' \
  "$boot_mib" "$boot_type" $((1 + boot_mib)) | sfdisk -q "$image"
dd if="$work/boot.img" of="$image" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$image" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none

step "compressing"
xz -T0 -1 -f -k "$image"
step ""
echo "image: the whole build took $SECONDS s" >&2
ls -l "$image" "$image.xz" >&2
echo "$image"
