#!/usr/bin/env bash
# The role's ROS apt path (ros2-apt-source, pinned) in a dry run on this machine, for
# each Ubuntu release it pins: the ROS repository and GitHub are not reachable from CI,
# so the release is served from a local copy of its download layout (an empty file: a
# dry run neither checks nor installs it). Changes nothing here (--check).
set -euo pipefail
cd "$(dirname "$0")/../.."
releases=$(mktemp -d)
trap 'rm -rf "$releases"' EXIT
version=$(sed -n 's/^kilo7_ros_apt_source_version: "\(.*\)"$/\1/p' \
  ansible/roles/kilo7/defaults/main.yml)
mkdir -p "$releases/$version" "$releases/cache"
for codename in jammy noble; do
  touch "$releases/$version/ros2-apt-source_$version.${codename}_all.deb"
  ANSIBLE_ROLES_PATH=ansible/roles ansible-playbook --check -i localhost, \
    -e ansible_python_interpreter=/usr/bin/python3 -e "ubuntu_codename=$codename" \
    -e "kilo7_ros_apt_source_url=file://$releases" -e "kilo7_deb_cache=$releases/cache" \
    tests/role/ros_apt_check.yml
done
