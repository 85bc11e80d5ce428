# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The kernel's own TPM 2.0 selftests (tools/testing/selftests/tpm2 of
# Debian's linux-source-6.1) against `chardev --vtpm-proxy --tpm2`, in a
# guest with no other TPM: all three classes, SmokeTest and AsyncTest on
# /dev/tpm0, SpaceTest (and AsyncTest.test_flush_invalid_context) on
# /dev/tpmrm0, the kernel's resource manager: seal/unseal with auth and
# policy, short commands, partial reads, a second write before the read,
# O_NONBLOCK + poll, context save/load and flush through the spaces.  One
# result per test method (15).  Recipe: shared/lab/vm/payloads/tpm2-selftests.
#
# The tests are staged by vm_stage_kselftests (lib/host.sh) and run by
# vt_kselftests (lib/guest.sh), as in cuse-selftests.  The daemon prints
# its device line on stdout (vt_proxy_start reads it through a pipe); swtpm
# prints it before the kernel has made the nodes, so they are waited for.

VM_DESC="kernel tpm2 selftests (SmokeTest, SpaceTest, AsyncTest) on chardev --vtpm-proxy: /dev/tpm0 and /dev/tpmrm0"
VM_DAEMON=guest
VM_BINS="/usr/bin/python3"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="tpm_vtpm_proxy"
VM_MEM=768
VM_TIMEOUT=300
VM_COST=50

vm_stage() { vm_stage_kselftests "$1"; }

vm_guest() {
	# the tests open /dev/tpm0 and /dev/tpmrm0 by name: the daemon's TPM must be the only one
	vt_no_other_tpm || return 0
	vt_user_dir /tmp/st
	t0=$(vt_now)
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if ! vt_proxy_start tpmd --tpm2 --tpmstate dir=/tmp/st --log file=/tmp/tpmd.log $VT_SANDBOX; then
		vt_fail device-line "no 'New TPM device' line on stdout: '$VT_PROXY_LINE' $(vt_proxy_why tpmd)"
		kill "$VT_PROXY_PID" 2>/dev/null
		return 0
	fi
	dpid=$VT_PROXY_PID
	if [ "$VT_PROXY_N" != 0 ]; then
		vt_fail device-line "the daemon's TPM is not tpm0: $VT_PROXY_LINE"
		kill "$dpid"
		return 0
	fi
	if vt_wait_path /dev/tpm0 20 && vt_wait_path /dev/tpmrm0 20; then
		vt_pass device-line "$VT_PROXY_LINE; /dev/tpm0 and /dev/tpmrm0 after $(awk -v a="$t0" -v b="$(vt_now)" 'BEGIN { printf "%.1f", b - a }') s"
	else
		vt_fail device-line "$VT_PROXY_LINE, but no /dev/tpm0 and /dev/tpmrm0 after 20 s: $(vt_proxy_why tpmd)"
		kill "$dpid"
		return 0
	fi
	vt_sandboxed sandboxed "$dpid"

	vt_kselftests "SmokeTest SpaceTest AsyncTest"

	vt_proxy_stop daemon-exit "$dpid" 0
	vt_info "dmesg tpm: $(dmesg | grep -iE 'tpm' | tail -n 6 | tr '\n' '|')"
	return 0
}
