# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The vtpm-proxy front in the real kernel (shared/spec/vtpm-proxy.md):
# `chardev --vtpm-proxy --tpm2` makes /dev/tpmN and /dev/tpmrmN through
# /dev/vtpmx and prints "New TPM device: /dev/tpmN (major/minor = M/m)" on
# stdout, read here through a pipe as a caller of swtpm reads it.  Ours
# prints it only once the kernel has made both nodes; swtpm prints it right
# after the ioctl, so for swtpm the nodes are waited for (and a missing node
# at the line is swtpm's known XFAIL).
#
#   instance a   the line through a pipe, the nodes and their numbers, the
#                pid file, the kernel's start-up (tpm_version_major 2),
#                tpm2-tools on /dev/tpmrmN (getrandom, getcap, PCR extend
#                arithmetic, ECC primary + create + load, NV), getrandom on
#                /dev/tpmN; SIGTERM: exit 0, nodes gone
#   instance b   at the same time as a, --flags startup-none (so the kernel
#                sends TPM2_Startup): tpm1/tpmrm1, both TPMs used at once,
#                separate PCRs
#   a again      same state dir: the same owner primary key and NV data
#   instance h   hostile bytes through the kernel (tools/proxy-raw.c): the
#                driver's SetLocality on tpmN (EFAULT) and tpmrmN (rc
#                0x000B0143 from the kernel), a command whose header size
#                is 6 (an error response, no hang), each followed by a
#                GetRandom
#   instance c   stdout a pipe whose reader (head -n 1) has gone: it keeps
#                serving and exits 0
#   instance g   stdout a pipe with no reader from the start, so writing the
#                line fails (EPIPE or SIGPIPE): it keeps serving, exits 0
#   instance d   --daemon: the line is there when the starting process
#                exits, the pid file names a live process
#   instance e   TPM 1.2 (no --tpm2): /dev/tpmN without tpmrmN, a raw
#                TPM_GetRandom (tools/proxy-raw.c)
#
# Results a swtpm row may carry as "SKIP ... XFAIL swtpm: ...": only checks
# that swtpm was seen failing in this run (vt_xfail_swtpm), never for ours.

VM_DESC="vtpm-proxy front: device line and nodes, tpm2-tools, two instances, restart, closed stdout, --daemon, TPM 1.2, hostile commands"
VM_DAEMON=guest
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_*"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="tpm_vtpm_proxy"
VM_TOOLS="proxy-raw"
VM_TIMEOUT=240
VM_COST=45

# TPM2_GetRandom(8): a 20-byte response; TPM_GetRandom(8) (1.2): 22 bytes
PB_RAND2=80010000000c0000017b0008
PB_RAND12=00c10000000e0000004600000008
# the driver's in-band SetLocality(0) (vendor code 0x20001000, tag ST_SESSIONS)
PB_SETLOC=80020000000b2000100000
PB_D=00000000000000000000000000000000000000000000000000000000000000a5

# pb_nodes CHECK N VERSION: /dev/tpmN (and /dev/tpmrmN for VERSION 2)
# existed when the device line had been read (VT_PROXY_AT_LINE); if not,
# they are waited for (20 s), and swtpm's early line is its XFAIL.
# Returns 1 if they never came.
pb_nodes() {
	_want=tpm$2
	[ "$3" = 2 ] && _want="$_want tpmrm$2"
	_miss=""
	for _x in $_want; do
		case $VT_PROXY_AT_LINE in *" $_x "*) ;; *) _miss="$_miss /dev/$_x" ;; esac
	done
	if [ -z "$_miss" ]; then
		vt_pass "$1" "$(echo "$_want" | sed 's|tpm|/dev/tpm|g') there when the line was read"
		return 0
	fi
	_t=$(vt_now)
	for _x in $_want; do
		vt_wait_path "/dev/$_x" 20 || { vt_fail "$1" "no /dev/$_x 20 s after the line"; return 1; }
	done
	vt_xfail_swtpm "$1" "prints the line before the kernel made the nodes:$_miss missing when it was read, there $(awk -v a="$_t" -v b="$(vt_now)" 'BEGIN { printf "%.2f", b - a }') s later"
}

# pb_serves CHECK PID DEV: the daemon PID runs and TPM2_GetRandom(8) on DEV answers
pb_serves() {
	if ! vt_alive "$2"; then vt_fail "$1" "the daemon is gone"; return 1; fi
	_o=$(proxy-raw -k "$2" "$3" $PB_RAND2)
	case $_o in
	"write=12 read=20 rc=0x00000000 resp=800100000014000000000008"*) vt_pass "$1" "GetRandom on $3 answers" ;;
	*) vt_fail "$1" "GetRandom on $3: $_o" ;;
	esac
}

# pb_start CHECK NAME STATEDIR ARGS...: vt_proxy_start NAME with state in
# STATEDIR and the pid file /tmp/NAME.pid; PASS CHECK with the line
pb_start() {
	_c=$1 _pn=$2 _sd=$3
	shift 3
	vt_user_dir "$_sd"
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if vt_proxy_start "$_pn" --tpmstate "dir=$_sd" --pid "file=/tmp/$_pn.pid" $VT_SANDBOX "$@"; then
		vt_pass "$_c" "$VT_PROXY_LINE"
		return 0
	fi
	vt_fail "$_c" "no 'New TPM device' line on stdout ('$VT_PROXY_LINE'): $(vt_proxy_why "$_pn")"
	kill "$VT_PROXY_PID" 2>/dev/null
	return 1
}

# pb_tools N: tpm2-tools on /dev/tpmrmN, getrandom on /dev/tpmN
pb_tools() {
	export TPM2TOOLS_TCTI="device:/dev/tpmrm$1"
	r1=$(tpm2_getrandom 16 --hex 2>/tmp/err)
	r2=$(tpm2_getrandom 16 --hex 2>>/tmp/err)
	if echo "$r1" | grep -qE '^[0-9a-f]{32}$' && [ "$r1" != "$r2" ]; then vt_pass getrandom-tpmrm "$r1"
	else vt_fail getrandom-tpmrm "got '$r1' and '$r2': $(tail -n 1 /tmp/err)"; fi
	r3=$(tpm2_getrandom -T "device:/dev/tpm$1" 16 --hex 2>/tmp/err)
	if echo "$r3" | grep -qE '^[0-9a-f]{32}$'; then vt_pass getrandom-tpm "$r3"
	else vt_fail getrandom-tpm "got '$r3': $(tail -n 1 /tmp/err)"; fi
	if vt_run getcap tpm2_getcap properties-fixed; then
		fam=$(grep -A 2 'TPM2_PT_FAMILY_INDICATOR' "$VT_OUT" | sed -n 's/.*value: "\(.*\)"/\1/p')
		vt_same getcap-family 2.0 "$fam" "TPM2_PT_FAMILY_INDICATOR"
	fi
	# PCR 16 (debug, resettable): one extend gives sha256(old || digest)
	before=$(vt_pcr sha256:16)
	tpm2_pcrextend "16:sha256=$PB_D" 2>/tmp/err || vt_info "pcrextend: $(tail -n 1 /tmp/err)"
	vt_same pcr-extend "$(vt_extend "$before" $PB_D)" "$(vt_pcr sha256:16)" "PCR16 after one extend from '$before'"
	# keys: the resource manager saves and flushes the transient objects
	vt_run createprimary tpm2_createprimary -C o -G ecc256 -c /tmp/p.ctx
	vt_run create tpm2_create -C /tmp/p.ctx -G ecc256 -u /tmp/k.pub -r /tmp/k.priv
	vt_run load tpm2_load -C /tmp/p.ctx -u /tmp/k.pub -r /tmp/k.priv -c /tmp/k.ctx
	# NV: define, write, read back, undefine
	printf 'vtpm-proxy nv data 0123456789abc' >/tmp/nv.in	# 32 bytes
	vt_run nvdefine tpm2_nvdefine 0x1500016 -C o -s 32 -a "ownerread|ownerwrite"
	vt_run nvwrite tpm2_nvwrite 0x1500016 -C o -i /tmp/nv.in
	vt_run nvread tpm2_nvread 0x1500016 -C o -s 32 -o /tmp/nv.out
	vt_same nv-data "$(cat /tmp/nv.in)" "$(cat /tmp/nv.out 2>/dev/null)" "NV contents"
	vt_run nvundefine tpm2_nvundefine 0x1500016 -C o
}

# pb_loop DEV: 8 tpm2_getrandom on DEV, all must succeed
pb_loop() {
	_i=0
	while [ $_i -lt 8 ]; do
		tpm2_getrandom -T "device:$1" 16 --hex >/dev/null 2>>"/tmp/loop.err" || return 1
		_i=$((_i + 1))
	done
}

# pb_second AN: instance b beside a (on tpmAN), --flags startup-none
pb_second() {
	pb_start second-line b /tmp/b --tpm2 --log file=/tmp/b.log --flags startup-none || return 0
	bpid=$VT_PROXY_PID bn=$VT_PROXY_N
	if [ "$bn" = "$1" ]; then vt_fail second-number "both instances are tpm$1"; fi
	pb_nodes second-nodes-at-line "$bn" 2 || { kill "$bpid"; return 0; }
	vt_same second-number "$(($1 + 1))" "$bn" "the second instance's number"
	vt_same second-devnum "$VT_PROXY_DEVNUM" "$(vt_devnum "/dev/tpm$bn")" "major:minor of /dev/tpm$bn"
	# startup-none: the kernel's SelfTest gets TPM_RC_INITIALIZE, and it
	# sends TPM2_Startup itself (and says so); then the TPM works
	if vt_run kernel-startup-getrandom tpm2_getrandom -T "device:/dev/tpmrm$bn" 8 --hex; then
		if dmesg | grep -q "tpm tpm$bn: starting up the TPM manually"; then
			vt_pass kernel-startup "the kernel sent TPM2_Startup to tpm$bn (dmesg), and the TPM works"
		else
			vt_fail kernel-startup "no 'tpm tpm$bn: starting up the TPM manually' in dmesg: the daemon started the TPM itself despite startup-none"
		fi
	fi
	: >/tmp/loop.err
	pb_loop "/dev/tpmrm$1" & l1=$!
	pb_loop "/dev/tpmrm$bn" & l2=$!
	wait $l1; r1=$?
	wait $l2; r2=$?
	if [ $r1 -eq 0 ] && [ $r2 -eq 0 ]; then vt_pass parallel-use "8 + 8 tpm2_getrandom on tpmrm$1 and tpmrm$bn at once"
	else vt_fail parallel-use "tpmrm$1: rc $r1, tpmrm$bn: rc $r2: $(tail -n 1 /tmp/loop.err)"; fi
	# separate TPMs: an extend of b's PCR 16 leaves a's alone
	a16=$(TPM2TOOLS_TCTI=device:/dev/tpmrm$1 vt_pcr sha256:16)
	b16=$(TPM2TOOLS_TCTI=device:/dev/tpmrm$bn vt_pcr sha256:16)
	tpm2_pcrextend -T "device:/dev/tpmrm$bn" "16:sha256=$PB_D" 2>/tmp/err || vt_info "pcrextend: $(tail -n 1 /tmp/err)"
	vt_same separate-pcrs "$a16 $(vt_extend "$b16" $PB_D)" \
		"$(TPM2TOOLS_TCTI=device:/dev/tpmrm$1 vt_pcr sha256:16) $(TPM2TOOLS_TCTI=device:/dev/tpmrm$bn vt_pcr sha256:16)" \
		"PCR16 of a and of b after extending b's"
	vt_proxy_stop second-exit "$bpid" "$bn"
}

# pb_hostile: instance h, bytes through the kernel that no TPM library
# should see, each followed by a GetRandom on a fresh open file
pb_hostile() {
	pb_start hostile-line h /tmp/h --tpm2 --log file=/tmp/h.log || return 0
	hpid=$VT_PROXY_PID hn=$VT_PROXY_N
	vt_wait_path "/dev/tpmrm$hn" 20
	# the driver's own command: a client's write of it on tpmN gets EFAULT
	o=$(proxy-raw -k "$hpid" "/dev/tpm$hn" $PB_SETLOC)
	case $o in
	write=EFAULT) vt_pass setlocality-tpm "the kernel refuses the driver's command from a client: $o" ;;
	*) vt_fail setlocality-tpm "$o" ;;
	esac
	pb_serves setlocality-tpm-after "$hpid" "/dev/tpm$hn"
	# through the resource manager a vendor code never reaches the daemon
	o=$(proxy-raw -k "$hpid" "/dev/tpmrm$hn" $PB_SETLOC)
	case $o in
	"write=11 read=10 rc=0x000b0143 "*) vt_pass vendor-tpmrm "the kernel answers TPM_RC_COMMAND_CODE (RM layer): $o" ;;
	*) vt_fail vendor-tpmrm "$o" ;;
	esac
	pb_serves vendor-tpmrm-after "$hpid" "/dev/tpmrm$hn"
	# a command whose header says 6 bytes: the kernel forwards those 6
	# bytes; the client waits for an answer (120 s for command code 0)
	o=$(proxy-raw -t 10 -k "$hpid" "/dev/tpm$hn" 800100000006)
	case $o in
	"write=6 read=10 rc=0x00000000 "*) vt_fail short-command "a 6-byte command answered success: $o" ;;
	"write=6 read=10 rc="*) vt_pass short-command "an error response: $o" ;;
	hang=*) vt_xfail_swtpm short-command "no answer within 10 s to a 6-byte command, the daemon was SIGKILLed: $o" ;;
	*) vt_xfail_swtpm short-command "$o" ;;
	esac
	case $o in
	hang=*) vt_skip short-command-after "not run: the daemon hung on the 6-byte command and was SIGKILLed" ;;
	*) pb_serves short-command-after "$hpid" "/dev/tpm$hn"
	   vt_proxy_stop hostile-exit "$hpid" "$hn" ;;
	esac
}

# pb_closed_stdout: instance c, its stdout a pipe whose reader has exited
pb_closed_stdout() {
	vt_user_dir /tmp/c
	rm -f /tmp/c.rc /tmp/c.pid
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	( "$VT_DAEMON_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/c --pid file=/tmp/c.pid \
		--log file=/tmp/c.log $VT_SANDBOX 2>/tmp/c.err; echo $? >/tmp/c.rc ) | head -n 1 >/tmp/c.line &
	hpid=$!		# head: the pipeline's last process
	_i=0
	while vt_alive $hpid && [ $_i -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done
	line=$(cat /tmp/c.line)
	cn=$(echo "$line" | sed -n 's|^New TPM device: /dev/tpm\([0-9][0-9]*\) .*|\1|p')
	cpid=$(cat /tmp/c.pid 2>/dev/null)
	if vt_alive $hpid || [ -z "$cn" ] || [ -z "$cpid" ]; then
		vt_fail closed-stdout-line "head -n 1 read '$line' (pid file: '$cpid'): $(tail -n 2 /tmp/c.err /tmp/c.log 2>/dev/null | tr '\n' ' ')"
		[ -n "$cpid" ] && kill "$cpid"
		return 0
	fi
	vt_pass closed-stdout-line "$line; the reader has exited"
	if ! vt_wait_path "/dev/tpmrm$cn" 20; then
		vt_fail closed-stdout-serves "no /dev/tpmrm$cn"
		kill "$cpid"
		return 0
	fi
	# traffic, an error response and a hostile command: whatever the daemon
	# may want to say about them, it has no reader
	tpm2_getrandom -T "device:/dev/tpmrm$cn" 8 --hex >/dev/null 2>&1
	tpm2_nvread -T "device:/dev/tpmrm$cn" 0x1500099 -C o -s 4 >/dev/null 2>&1
	tpm2_pcrextend -T "device:/dev/tpmrm$cn" "16:sha256=$PB_D" >/dev/null 2>&1
	sleep 0.5
	if vt_alive "$cpid"; then
		pb_serves closed-stdout-serves "$cpid" "/dev/tpmrm$cn"
	else
		vt_xfail_swtpm closed-stdout-serves "the daemon died after its stdout reader had gone: status $(cat /tmp/c.rc 2>/dev/null) ($(tail -n 1 /tmp/c.err 2>/dev/null))"
		vt_skip closed-stdout-exit "not run: the daemon had died"
		return 0
	fi
	kill -TERM "$cpid"
	_i=0
	while [ ! -s /tmp/c.rc ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	_i=0
	while [ -e "/dev/tpm$cn" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	rc=$(cat /tmp/c.rc 2>/dev/null)
	if [ "$rc" = 0 ] && [ ! -e "/dev/tpm$cn" ]; then vt_pass closed-stdout-exit "exit 0 on SIGTERM, nodes gone"
	elif [ -z "$rc" ]; then vt_fail closed-stdout-exit "still running 10 s after SIGTERM"; kill -9 "$cpid"
	elif [ "$rc" != 0 ]; then vt_xfail_swtpm closed-stdout-exit "exit status $rc on SIGTERM with its stdout reader gone"
	else vt_fail closed-stdout-exit "exit 0, but /dev/tpm$cn is still there"; fi
}

# pb_stdout_gone: instance g, its stdout a pipe that has no reader left
# when the device line is written (the write gets EPIPE, or SIGPIPE)
pb_stdout_gone() {
	vt_user_dir /tmp/g
	rm -f /tmp/g.fifo
	mkfifo /tmp/g.fifo
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/g --log file=/tmp/g.log $VT_SANDBOX \
		>/tmp/g.fifo 2>/tmp/g.err &
	gpid=$!
	# the open returns once the daemon's side is open (before its exec);
	# then the pipe loses its only reader, long before the line is written
	exec 8</tmp/g.fifo
	exec 8<&-
	rm -f /tmp/g.fifo
	# the node it makes is the first new one
	_i=0 gn=""
	while [ -z "$gn" ] && vt_alive $gpid && [ $_i -lt 200 ]; do
		for _f in /dev/tpmrm[0-9]*; do
			[ -c "$_f" ] && gn=${_f#/dev/tpmrm}
		done
		[ -z "$gn" ] && sleep 0.1
		_i=$((_i + 1))
	done
	sleep 0.5
	if ! vt_alive $gpid; then
		wait $gpid; rc=$?
		_why=""
		[ $rc -eq 141 ] && _why=" (128 + SIGPIPE)"
		_said=$(vt_proxy_why g)
		vt_xfail_swtpm stdout-gone-serves "the daemon died when its stdout had no reader: exit status $rc$_why, ${gn:+/dev/tpmrm$gn came and went}${gn:-no node made}${_said:+; it said: $_said}"
		vt_skip stdout-gone-exit "not run: the daemon had died"
		return 0
	fi
	if [ -z "$gn" ]; then
		vt_fail stdout-gone-serves "the daemon runs, but made no /dev/tpmrmN in 20 s: $(vt_proxy_why g)"
		kill -9 $gpid; wait $gpid
		return 0
	fi
	pb_serves stdout-gone-serves "$gpid" "/dev/tpmrm$gn"
	vt_proxy_stop stdout-gone-exit "$gpid" "$gn"
}

# pb_daemon: instance d, --daemon
pb_daemon() {
	vt_user_dir /tmp/d
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/d --pid file=/tmp/d.pid \
		--log file=/tmp/d.log --daemon $VT_SANDBOX >/tmp/d.out 2>/tmp/d.err
	rc=$?
	# (as vt_proxy_start: the nodes at this moment, without a fork)
	VT_PROXY_AT_LINE=""
	for _f in /dev/tpm[0-9]* /dev/tpmrm[0-9]*; do
		[ -c "$_f" ] && VT_PROXY_AT_LINE="$VT_PROXY_AT_LINE ${_f#/dev/}"
	done
	VT_PROXY_AT_LINE="$VT_PROXY_AT_LINE "
	line=$(head -n 1 /tmp/d.out)
	dn=$(echo "$line" | sed -n 's|^New TPM device: /dev/tpm\([0-9][0-9]*\) .*|\1|p')
	if [ $rc -ne 0 ] || [ -z "$dn" ]; then
		vt_fail daemon-line "exit status $rc, stdout '$line' when the starting process exited: $(tail -n 2 /tmp/d.err /tmp/d.log 2>/dev/null | tr '\n' ' ')"
		[ -s /tmp/d.pid ] && kill "$(cat /tmp/d.pid)"
		return 0
	fi
	vt_pass daemon-line "exit 0 with '$line' on stdout"
	pb_nodes daemon-nodes-at-exit "$dn" 2 || return 0
	dpid=$(cat /tmp/d.pid 2>/dev/null)
	if [ -n "$dpid" ] && vt_alive "$dpid"; then
		vt_pass daemon-pid-file "$dpid runs: $(tr '\0' ' ' </proc/"$dpid"/cmdline | cut -c1-80)"
	else
		vt_fail daemon-pid-file "no live process in /tmp/d.pid ('$dpid')"
		return 0
	fi
	pb_serves daemon-serves "$dpid" "/dev/tpmrm$dn"
	kill -TERM "$dpid"
	# (not our child: its parent is /init, which reaps late; a zombie counts as gone)
	_i=0
	while { vt_alive "$dpid" || [ -e "/dev/tpm$dn" ]; } && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	if vt_alive "$dpid"; then vt_fail daemon-mode-exit "still running 10 s after SIGTERM"; kill -9 "$dpid"
	elif [ -e "/dev/tpm$dn" ]; then vt_fail daemon-mode-exit "gone, but /dev/tpm$dn is still there"
	else vt_pass daemon-mode-exit "gone after SIGTERM, nodes removed"; fi
}

# pb_tpm12: instance e, TPM 1.2
pb_tpm12() {
	pb_start tpm12-line e /tmp/e --log file=/tmp/e.log || return 0
	epid=$VT_PROXY_PID en=$VT_PROXY_N
	pb_nodes tpm12-nodes-at-line "$en" 1 || { kill "$epid"; return 0; }
	if [ -e "/dev/tpmrm$en" ]; then vt_fail tpm12-no-tpmrm "/dev/tpmrm$en exists for a TPM 1.2"
	else vt_pass tpm12-no-tpmrm "no resource manager node for TPM 1.2"; fi
	vt_same tpm12-version-major 1 "$(cat "/sys/class/tpm/tpm$en/tpm_version_major" 2>&1)" "tpm_version_major"
	o=$(proxy-raw -k "$epid" "/dev/tpm$en" $PB_RAND12)
	case $o in
	"write=14 read=22 rc=0x00000000 resp=00c4000000160000000000000008"*) vt_pass tpm12-getrandom "$o" ;;
	*) vt_fail tpm12-getrandom "$o" ;;
	esac
	vt_proxy_stop tpm12-exit "$epid" "$en"
}

vm_guest() {
	vt_no_other_tpm || return 0

	# ---- instance a: the line through a pipe, nodes, version, tools
	t0=$(vt_now)
	pb_start device-line a /tmp/a --tpm2 --log file=/tmp/a.log,level=2 || return 0
	apid=$VT_PROXY_PID an=$VT_PROXY_N
	vt_info "device line after $(awk -v a="$t0" -v b="$(vt_now)" 'BEGIN { printf "%.2f", b - a }') s"
	pb_nodes nodes-at-line "$an" 2 || { kill "$apid"; return 0; }
	vt_same devnum "$VT_PROXY_DEVNUM" "$(vt_devnum "/dev/tpm$an")" "major:minor of /dev/tpm$an"
	vt_same pid-file "$apid" "$(cat /tmp/a.pid 2>/dev/null)" "pid in /tmp/a.pid"
	# the kernel registered a TPM 2 (its start-up commands were answered)
	vt_same tpm-version-major 2 "$(cat "/sys/class/tpm/tpm$an/tpm_version_major" 2>&1)" "tpm_version_major"
	pb_tools "$an"

	# ---- instance b beside a
	pb_second "$an"

	# ---- a: state to keep, SIGTERM
	export TPM2TOOLS_TCTI="device:/dev/tpmrm$an"
	vt_run srk-before sh -c 'tpm2_createprimary -C o -G ecc256 -c /tmp/srk.ctx >/dev/null &&
		tpm2_readpublic -c /tmp/srk.ctx -o /tmp/srk1.pub'
	printf 'kept across a restart 0123456789' >/tmp/nvk.in	# 32 bytes
	vt_run nv-before sh -c 'tpm2_nvdefine 0x1500017 -C o -s 32 -a "ownerread|ownerwrite" &&
		tpm2_nvwrite 0x1500017 -C o -i /tmp/nvk.in'
	vt_proxy_stop daemon-exit "$apid" "$an"

	# ---- a again, on the same state
	if pb_start restart-line a2 /tmp/a --tpm2 --log file=/tmp/a2.log; then
		a2pid=$VT_PROXY_PID a2n=$VT_PROXY_N
		if vt_wait_path "/dev/tpmrm$a2n" 20; then
			export TPM2TOOLS_TCTI="device:/dev/tpmrm$a2n"
			tpm2_createprimary -C o -G ecc256 -c /tmp/srk2.ctx >/dev/null 2>/tmp/err &&
				tpm2_readpublic -c /tmp/srk2.ctx -o /tmp/srk2.pub >/dev/null 2>>/tmp/err
			if [ -s /tmp/srk1.pub ] && cmp -s /tmp/srk1.pub /tmp/srk2.pub; then
				vt_pass restart-srk "the same owner primary key (ECC P-256) after the restart"
			else
				vt_fail restart-srk "the owner primary key differs after the restart: $(tail -n 1 /tmp/err)"
			fi
			tpm2_nvread 0x1500017 -C o -s 32 -o /tmp/nvk.out 2>/tmp/err
			vt_same restart-nv "$(cat /tmp/nvk.in)" "$(cat /tmp/nvk.out 2>/dev/null)" "NV 0x1500017 after the restart"
			tpm2_nvundefine 0x1500017 -C o 2>/dev/null
		else
			vt_fail restart-srk "no /dev/tpmrm$a2n after the restart"
		fi
		vt_proxy_stop restart-exit "$a2pid" "$a2n"
	fi

	# ---- h, c, g, d, e
	pb_hostile
	pb_closed_stdout
	pb_stdout_gone
	pb_daemon
	pb_tpm12
	vt_info "dmesg tpm: $(dmesg | grep -iE 'tpm' | tail -n 8 | tr '\n' '|')"
	return 0
}
