# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# An instance published as a CDI device (Container Device Interface): the
# spec /run/cdi/vtpm-bridge-NAME.json (kind vtpm-bridge.io/tpm, device NAME)
# gives a container the instance's /dev/tpmrmN and /dev/tpmN as its own
# /dev/tpmrm0 and /dev/tpm0.  The consumer is Debian 12's podman 4.3.1
# (its vendored container-device-interface v0.5.2 reads /etc/cdi and
# /var/run/cdi, cdiVersion 0.1.0-0.5.0) with crun, in the guest:
#
#   pad          a first vtpm-proxy instance, so that ours is tpm1/tpmrm1
#                and the container's tpmrm0 can only come from hostPath
#   NAME         `vtpm-bridge run NAME` from /etc/vtpm-bridge/NAME.conf
#                (fronts = vtpm-proxy, user = root, group = root); the host
#                side defines and writes an NV index through /dev/tpmrmN
#   spec         /run/cdi/vtpm-bridge-NAME.json, the daemon's own, names
#                /dev/tpmrmN and /dev/tpmN as hostPath
#   podman run --device vtpm-bridge.io/tpm=NAME --rootfs /vm/ctr-root:
#                the container's /dev holds only tpm0 and tpmrm0, with the
#                host nodes' major:minor; tpm2_getrandom through both; it
#                reads the host's NV value and writes its own, which the
#                host then reads through /dev/tpmrmN
#   unpublished  SIGTERM: the daemon (root: user = root) removes its spec,
#                and podman run --device vtpm-bridge.io/tpm=NAME fails with
#                "unresolvable CDI devices" and runs nothing
#
# The guest's podman set-up, the minimum found: crun, conmon and podman
# staged with their libraries; cgroup2 mounted on /sys/fs/cgroup (crun:
# "invalid file system type on '/sys/fs/cgroup'" otherwise);
# /etc/containers/containers.conf with [engine] no_pivot_root = true,
# because the guest's root is the initramfs (crun: "pivot_root: Invalid
# argument"); podman --storage-driver vfs (no overlay on the initramfs or
# tmpfs), --network none (no CNI plugins), --rootfs (no image, no
# registry).  --cgroup-manager cgroupfs and --events-backend file only say
# what podman falls back to here (no systemd, no journald).  No
# storage.conf, policy.json or registries.conf is needed.  Debian's swtpm
# publishes no CDI spec: one host-side SKIP.

VM_DESC="CDI: a podman container gets an instance's tpmrmN/tpmN as its tpmrm0/tpm0 through /run/cdi/vtpm-bridge-NAME.json"
VM_DAEMON=guest
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_* /usr/bin/podman /usr/bin/crun /usr/bin/conmon"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="tpm_vtpm_proxy"
VM_TIMEOUT=180
VM_COST=30

IC_NAME=cdi1
IC_SPEC=/run/cdi/vtpm-bridge-$IC_NAME.json
IC_NV=0x1500016
IC_PODMAN="podman --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"

# ic_link STAGE PATH: PATH of the image also in the container's root
# (STAGE/vm/ctr-root), as a hard link (cpio keeps it: no second copy); a
# symlink is kept as such and its target linked too
ic_link() {
	_s=$1 _p=$2
	while :; do
		[ -L "$_s/vm/ctr-root$_p" ] || [ -f "$_s/vm/ctr-root$_p" ] && return 0
		mkdir -p "$(dirname "$_s/vm/ctr-root$_p")" || return 1
		if [ -L "$_s$_p" ]; then
			_t=$(readlink "$_s$_p")
			cp -P "$_s$_p" "$_s/vm/ctr-root$_p" || return 1
			case $_t in /*) _p=$_t ;; *) _p=$(dirname "$_p")/$_t ;; esac
		elif [ -f "$_s$_p" ]; then
			ln "$_s$_p" "$_s/vm/ctr-root$_p" || return 1
			return 0
		else
			VM_ERR="container root: $_p is not in the image"
			return 1
		fi
	done
}

# The container's root: busybox, tpm2 (getrandom, nvread, nvwrite) and the
# device TCTI with their libraries, all hard links into the image
vm_stage() {
	_c=$1/vm/ctr-root
	mkdir -p "$_c/usr/bin" "$_c/usr/lib" "$_c/usr/lib64" "$_c/etc" "$_c/dev" "$_c/proc" \
		"$_c/sys" "$_c/tmp" "$_c/run" || return 1
	ln -s usr/bin "$_c/bin"; ln -s usr/lib "$_c/lib"; ln -s usr/lib64 "$_c/lib64"
	ic_link "$1" /usr/bin/busybox || return 1
	for _a in sh ls stat cat echo tr od xxd grep; do ln -s busybox "$_c/usr/bin/$_a"; done
	for _f in /usr/bin/tpm2 /usr/bin/tpm2_getrandom /usr/bin/tpm2_nvread /usr/bin/tpm2_nvwrite \
			/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
		ic_link "$1" "$_f" || return 1
		for _l in $(ldd "$_f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
			ic_link "$1" "$_l" || return 1
		done
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$_c/etc/passwd"
	printf 'root:x:0:\n' >"$_c/etc/group"
	printf '/usr/lib/x86_64-linux-gnu\n' >"$_c/etc/ld.so.conf"
	ldconfig -r "$_c" 2>/dev/null
	return 0
}

vm_host() {
	vm_ours_host cdi "the CDI spec is vtpm-bridge's (vtpm-bridge run NAME writes $IC_SPEC); Debian's swtpm publishes none"
}

# ic_start: the instance, `vtpm-bridge run NAME` from its conf in
# /etc/vtpm-bridge (the default directories: /run/vtpm-bridge, /run/cdi,
# the state in /var/lib/vtpm-bridge/NAME); its device line as
# vt_proxy_start reads it
ic_start() {
	mkdir -p /etc/vtpm-bridge
	printf 'fronts = vtpm-proxy\nuser = root\ngroup = root\n' >/etc/vtpm-bridge/$IC_NAME.conf
	if vt_proxy_launch "$IC_NAME" "$VT_DAEMON_BIN" run "$IC_NAME"; then
		vt_pass device-line "$VT_PROXY_LINE"
		IC_PID=$VT_PROXY_PID IC_N=$VT_PROXY_N
		return 0
	fi
	vt_fail device-line "no 'New TPM device' line: $(vt_proxy_why "$IC_NAME")"
	kill "$VT_PROXY_PID" 2>/dev/null
	return 1
}

# ic_publish: the daemon's /run/cdi/vtpm-bridge-NAME.json is there once its
# device line is, with the kind, the name and /dev/tpmrmN and /dev/tpmN as
# hostPath (what podman makes of it is checked in the container)
ic_publish() {
	_t=$(tr -d ' \n' <"$IC_SPEC" 2>/dev/null)
	case $_t in
	*'"kind":"vtpm-bridge.io/tpm"'*'"name":"'$IC_NAME'"'*) ;;
	*) vt_fail spec-published "$IC_SPEC: '$_t'"; return 1 ;;
	esac
	case $_t in
	*'"path":"/dev/tpmrm0","hostPath":"/dev/tpmrm'$IC_N'"'*'"path":"/dev/tpm0","hostPath":"/dev/tpm'$IC_N'"'*)
		vt_pass spec-published "$_t" ;;
	*) vt_fail spec-published "not /dev/tpmrm$IC_N and /dev/tpm$IC_N: $_t"; return 1 ;;
	esac
}

# ic_unpublish: after the daemon's exit its spec is gone (user = root: the
# daemon removes it itself; as another user the unit's `cleanup` would)
ic_unpublish() {
	if [ -e "$IC_SPEC" ]; then vt_fail spec-removed "$IC_SPEC is still there after the exit: $(tr -d ' \n' <"$IC_SPEC")"
	else vt_pass spec-removed "$IC_SPEC removed by the daemon"; fi
}

# ic_hex FILE: its bytes as lower-case hex, one line
ic_hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }

# What the container runs: one "KEY value" line per finding, then it
# writes IC_CTR_DATA into the NV index
# shellcheck disable=SC2016  # expanded in the container
IC_CTR_SCRIPT='
echo "nodes $(ls /dev | grep tpm | tr "\n" " ")"
echo "devnum-tpmrm0 $(stat -c "%t:%T" /dev/tpmrm0)"
echo "devnum-tpm0 $(stat -c "%t:%T" /dev/tpm0)"
echo "rand-tpmrm0 $(tpm2_getrandom -T device:/dev/tpmrm0 8 --hex 2>&1 | tail -n 1)"
echo "rand-tpm0 $(tpm2_getrandom -T device:/dev/tpm0 8 --hex 2>&1 | tail -n 1)"
tpm2_nvread -T device:/dev/tpmrm0 -C o -s 32 -o /tmp/nv "$1" 2>/tmp/nv.err
echo "nv $(od -An -tx1 -v /tmp/nv | tr -d " \n") $(tail -n 1 /tmp/nv.err)"
echo "$2" | xxd -r -p >/tmp/nv.in
tpm2_nvwrite -T device:/dev/tpmrm0 -C o -i /tmp/nv.in "$1" 2>/tmp/nvw.err
echo "nvwrite $? $(tail -n 1 /tmp/nvw.err)"
'

# ic_got KEY: the value the container printed for KEY
ic_got() { sed -n "s/^$1 //p" "$VT_OUT" | head -n 1; }

# ic_hexnum "a:b" (hex, as stat %t:%T): "A:B" decimal
ic_hexnum() { printf '%d:%d' "0x${1%:*}" "0x${1#*:}"; }

vm_guest() {
	# crun needs cgroup2 on /sys/fs/cgroup, and no pivot_root on the initramfs
	if mount -t cgroup2 cgroup2 /sys/fs/cgroup; then vt_pass cgroup2 "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
	else vt_fail cgroup2 "mount -t cgroup2 on /sys/fs/cgroup failed"; return 0; fi
	mkdir -p /etc/containers
	printf '[engine]\nno_pivot_root = true\n' >/etc/containers/containers.conf

	# pad: tpm0, so that ours is tpm1
	vt_user_dir /tmp/st-pad
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if vt_proxy_start pad --tpm2 --tpmstate dir=/tmp/st-pad $VT_SANDBOX; then
		vt_pass pad-line "$VT_PROXY_LINE"
		pad_pid=$VT_PROXY_PID pad_n=$VT_PROXY_N
	else
		vt_fail pad-line "no 'New TPM device' line: $(vt_proxy_why pad)"
		return 0
	fi
	ic_start || return 0
	vt_wait_path "/dev/tpmrm$IC_N" 20
	vt_wait_path "/dev/tpm$IC_N" 20

	# the host side writes an NV index through /dev/tpmrmN
	export TPM2TOOLS_TCTI="device:/dev/tpmrm$IC_N"
	host_data=$(tpm2_getrandom 32 --hex 2>/dev/null)
	echo "$host_data" | xxd -r -p >/tmp/nv-host.in
	vt_run host-nvwrite sh -c "tpm2_nvdefine $IC_NV -C o -s 32 -a 'ownerread|ownerwrite' &&
		tpm2_nvwrite $IC_NV -C o -i /tmp/nv-host.in"

	ic_publish || return 0

	# the container: only what the spec gives it
	ctr_data=$(tpm2_getrandom 32 --hex 2>/dev/null)
	t0=$(vt_now)
	# (podman's options before --rootfs DIR: what follows DIR is the command)
	# shellcheck disable=SC2086  # IC_PODMAN is several words
	vt_run podman-run $IC_PODMAN run --rm --network none --device "vtpm-bridge.io/tpm=$IC_NAME" \
		--rootfs /vm/ctr-root /bin/sh -c "$IC_CTR_SCRIPT" ic "$IC_NV" "$ctr_data"
	vt_info "podman run: $(vt_dt "$t0" "$(vt_now)") s"
	vt_same ctr-nodes "tpm0 tpmrm0 " "$(ic_got nodes)" "the container's /dev/tpm*"
	got=$(ic_got devnum-tpmrm0)
	[ -n "$got" ] && got=$(ic_hexnum "$got")
	vt_same ctr-tpmrm0-devnum "$(vt_devnum "/dev/tpmrm$IC_N")" "$got" \
		"the container's /dev/tpmrm0 (host /dev/tpmrm$pad_n is $(vt_devnum "/dev/tpmrm$pad_n"))"
	got=$(ic_got devnum-tpm0)
	[ -n "$got" ] && got=$(ic_hexnum "$got")
	vt_same ctr-tpm0-devnum "$(vt_devnum "/dev/tpm$IC_N")" "$got" \
		"the container's /dev/tpm0 (host /dev/tpm$pad_n is $(vt_devnum "/dev/tpm$pad_n"))"
	for n in tpmrm0 tpm0; do
		got=$(ic_got "rand-$n")
		if echo "$got" | grep -qE '^[0-9a-f]{16}$'; then vt_pass "ctr-getrandom-$n" "$got"
		else vt_fail "ctr-getrandom-$n" "tpm2_getrandom on the container's /dev/$n: '$got'"; fi
	done
	got=$(ic_got nv)
	vt_same ctr-nv-host-value "$host_data " "$got" "NV $IC_NV read in the container"
	vt_same ctr-nvwrite "0 " "$(ic_got nvwrite)" "tpm2_nvwrite in the container (status, error)"
	tpm2_nvread "$IC_NV" -C o -s 32 -o /tmp/nv-after 2>/tmp/err
	vt_same host-nv-ctr-value "$ctr_data" "$(ic_hex /tmp/nv-after)" "NV $IC_NV read on the host after the container"

	# unpublished: the instance stops, its spec goes, and the device no
	# longer resolves
	vt_proxy_stop daemon-exit "$IC_PID" "$IC_N"
	ic_unpublish
	# shellcheck disable=SC2086  # IC_PODMAN is several words
	$IC_PODMAN run --rm --network none --device "vtpm-bridge.io/tpm=$IC_NAME" \
		--rootfs /vm/ctr-root /bin/sh -c 'echo ran' >/tmp/neg.out 2>&1
	rc=$?
	sed 's/^/    | /' /tmp/neg.out
	if [ $rc -ne 0 ] && grep -q "unresolvable CDI devices vtpm-bridge.io/tpm=$IC_NAME" /tmp/neg.out &&
			! grep -q '^ran$' /tmp/neg.out; then
		vt_pass unresolvable "exit $rc: $(grep -v '^$' /tmp/neg.out | tail -n 1)"
	else
		vt_fail unresolvable "exit $rc: $(grep -v '^$' /tmp/neg.out | tail -n 1)"
	fi
	vt_proxy_stop pad-exit "$pad_pid" "$pad_n"
}
