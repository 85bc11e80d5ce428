#!/bin/sh
# Installs the Debian 12 packages vtpm-bridge builds and tests with.
# Only what is missing is installed; apt-get runs through sudo when not root.
set -eu

PKGS="build-essential pkg-config clang cppcheck valgrind
libtpms-dev libtpms0 libfuse3-dev libnl-3-dev libnl-genl-3-dev libssl-dev libseccomp-dev libseccomp2 gdb
python3 swtpm swtpm-tools swtpm-dev tpm2-tools libtss2-tcti-swtpm0 linux-perf strace
qemu-system-x86 qemu-utils seabios busybox-static cpio kmod procps iproute2
libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients openssl
e2fsprogs xfsprogs dmsetup
podman crun conmon systemd udev util-linux"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "setup-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
