# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The harness itself: the test kernel's modules that later scenarios need
# (fuse, cuse, tpm_vtpm_proxy) are staged with their dependencies, load, and
# create their control nodes.  No daemon: runs once per suite run.

VM_DESC="test kernel: fuse, cuse and tpm_vtpm_proxy load and create their nodes"
VM_DAEMON=none
VM_MODULES="fuse cuse tpm_vtpm_proxy"
VM_TIMEOUT=120
VM_COST=10

vm_guest() {
	# /init has loaded VM_MODULES (modprobe-* results); the nodes must follow
	for node in /dev/fuse /dev/cuse /dev/vtpmx; do
		if vt_wait_path $node 5 && [ -c $node ]; then vt_pass "node-${node#/dev/}"
		else vt_fail "node-${node#/dev/}" "no character device $node: $(ls /dev | tr '\n' ' ')"; fi
	done
	vt_same kernel-release "$(cat /vm/kernel-release 2>/dev/null)" "$(uname -r)" "uname -r"
}
