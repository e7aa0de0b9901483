#!/bin/bash
# Build the KILO.7 appliance image: Debian 12 from Debian's archive (mmdebstrap), the
# kilo7 role applied in image mode through Ansible's chroot connection, a UEFI boot
# loader, and an MBR disk with two partitions:
#   1 KILO7-BOOT  FAT32: the boot loader (and on a Pi its firmware) and
#                 kilo7-settings.txt, the file the owner edits before the first boot
#   2 kilo7-root  ext4: the system, grown to the disk on the first boot
# Nothing secret is in it: broker passwords, the robot's CA, SSH host keys and the
# machine id are all made on the robot at its first boot.
#
# Usage: image/build.sh ARCH DEB OUT_DIR   (ARCH: amd64; run as root)
# Writes OUT_DIR/kilo7-VERSION-ARCH.img and .img.xz, and prints what each step took.
set -euo pipefail

arch=${1:?usage: build.sh amd64 DEB OUT_DIR}
deb=$(realpath "${2:?the kilo7 .deb (make deb)}")
out_dir=$(realpath -m "${3:?output directory}")
case "$arch" in
  amd64) efi_target=x86_64-efi efi_name=BOOTX64.EFI console=ttyS0,115200
         boot_type=ef kernel=linux-image-amd64 ;;
  *) echo "ARCH must be amd64 (arm64 is not built yet), not $arch" >&2; exit 2 ;;
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

step_began=$SECONDS
step() {
  echo "image: $1 (previous step $((SECONDS - step_began)) s)" >&2
  step_began=$SECONDS
}

step "the base system: Debian 12 $arch from $mirror (mmdebstrap)"
# What the appliance needs beyond minbase: a kernel and boot, systemd's network and time,
# SSH for the owner, Wi-Fi, growing the root, Python for Ansible and the nodes.
packages=(
  systemd systemd-sysv systemd-timesyncd dbus udev kmod "$kernel" initramfs-tools
  "grub-efi-$arch-bin" e2fsprogs dosfstools fdisk cloud-guest-utils
  openssh-server sudo wpasupplicant iproute2 iputils-ping netbase tzdata
  python3 python3-apt python3-venv ca-certificates procps less
)
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
  -e "ansible_host=$rootfs" -e "kilo7_package_file=$deb" -e "kilo7_package_version=$version" >&2

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
step "done"
ls -l "$image" "$image.xz" >&2
echo "$image"
