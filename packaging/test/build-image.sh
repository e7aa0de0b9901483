#!/bin/bash
# Build (once) a Debian bookworm image with systemd as PID 1, by debootstrap from
# Debian's archive (there is no image registry here). Two flavors:
#   bare     what a freshly flashed robot has: systemd, python3 (for Ansible), CAs;
#            molecule provisions it with the role
#   package  bare + the kilo7 .deb's runtime dependencies, mosquitto and a ROS 2
#            underlay from PyPI wheels in /opt/ros-wheels (the x86_64 stand-in for
#            /opt/ros/humble); the package test installs the .deb into it
# The tag carries a hash of this recipe, so an unchanged recipe reuses the image.
# Usage: build-image.sh bare|package  -> prints the image tag
set -euo pipefail

flavor=${1:?usage: build-image.sh bare|package}
case "$flavor" in bare|package) ;; *) echo "unknown flavor $flavor" >&2; exit 2;; esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ros_requirements=$(grep -E '^ros-' "$repo/requirements/ros-kilted.txt")
apt_packages="mosquitto mosquitto-clients python3-paho-mqtt python3-yaml python3-pigpio python3-venv openssl stunnel4"
recipe_hash=$( (cat "$0"; echo "$ros_requirements"; echo "$apt_packages") | sha256sum | cut -c1-12)
tag="localhost/kilo7-systemd:bookworm-$flavor-$recipe_hash"

if podman image exists "$tag"; then
  echo "$tag"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "building $tag (debootstrap from $mirror)" >&2
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,python3-venv,ca-certificates,iproute2,procps,sudo \
  bookworm "$rootfs" "$mirror" >&2

# The host's extra CAs (a TLS-inspecting proxy) so apt and pip inside trust it too.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >&2
fi

# apt's cache_valid_time must not mistake these lists for a fresh update.
touch -d @0 "$rootfs/var/lib/apt/lists"

if [ "$flavor" = package ]; then
  # Install without starting anything: there is no init in the chroot.
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" apt-get install -y -q --no-install-recommends $apt_packages >&2
  rm "$rootfs/usr/sbin/policy-rc.d"

  # ROS 2 from wheels, fetched (and sdists built) on the host, whose pip reaches PyPI, and
  # installed offline; system site packages so apt's paho-mqtt is the one imported.
  mkdir "$rootfs/tmp/wheels"
  echo "$ros_requirements" > "$rootfs/tmp/wheels/requirements.txt"
  python3 -m pip wheel -q --disable-pip-version-check \
    -w "$rootfs/tmp/wheels" -r "$rootfs/tmp/wheels/requirements.txt" >&2
  chroot "$rootfs" python3 -m venv --system-site-packages /opt/ros-wheels >&2
  chroot "$rootfs" /opt/ros-wheels/bin/pip install -q --disable-pip-version-check --no-index \
    --find-links /tmp/wheels -r /tmp/wheels/requirements.txt >&2
  rm -rf "$rootfs/tmp/wheels"
fi

tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/lib/systemd/systemd"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$tag" >&2
echo "$tag"
