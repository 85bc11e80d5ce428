# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The CUSE front in the real kernel (issue 10, points 1-3): `vtpm-bridge cuse`
# creates /dev/vtpm-a with the requested major:minor; swtpm_ioctl
# --tpm-device runs every operation it has; tpm2-tools work over TCTI
# device:/dev/vtpm-a; two instances share one fixed major; a TPM 1.2
# instance; state blobs move from CUSE to a socket-front instance and back;
# PTM_SHUTDOWN ends the daemon and removes the node.
#
# The daemon runs in the guest.  Debian's swtpm 0.7.1 is built without CUSE
# (`swtpm cuse` is "Unsupported TPM interface type"), so its rows are SKIPs.

VM_DESC="CUSE front: /dev/vtpm-NAME, swtpm_ioctl, tpm2-tools, blobs to and from the socket front"
VM_DAEMON=guest
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_* /usr/bin/swtpm_ioctl"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0
/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse"
VM_TIMEOUT=300
VM_COST=60

CB_MAJOR=260		# a fixed major no driver of this kernel registers

# cb_start NAME ARGS...: the daemon as `swtpm cuse` is started (it detaches once the node exists)
cb_start() {
	_n=$1; shift
	vt_user_dir "/tmp/$_n"
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" cuse -n "$_n" --tpmstate "dir=/tmp/$_n" --pid "file=/tmp/$_n.pid" \
		--log "file=/tmp/$_n.log,level=2" $VT_SANDBOX "$@"
}

# cb_ioctl NAME CHECK ARGS...: swtpm_ioctl on /dev/NAME, PASS by its status
cb_ioctl() {
	_d=$1 _c=$2; shift 2
	vt_run "$_c" swtpm_ioctl --tpm-device "/dev/$_d" "$@"
}

# cb_out CHECK PATTERN: the last vt_run output holds PATTERN (grep -E)
cb_out() {
	if grep -qE "$2" "$VT_OUT"; then vt_pass "$1"
	else vt_fail "$1" "no /$2/ in: $(tr '\n' ' ' < "$VT_OUT" | cut -c1-200)"; fi
}

cb_alive() {	# PID: exists and is not a zombie
	_st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$_st" ] && [ "$_st" != Z ]
}

cb_dead() {	# PID SECONDS: the process is gone
	_p=$1
	_i=0
	# a detached daemon's parent is /init, which reaps late: a zombie counts as gone
	while [ -n "$_p" ] && cb_alive "$_p" && [ $_i -lt $(( $2 * 10 )) ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	[ -n "$_p" ] && ! cb_alive "$_p"
}

# cb_devnum NODE: "major:minor" of a character device, decimal
cb_devnum() {
	_s=$(stat -c '%t %T' "$1" 2>/dev/null) || return 1
	# shellcheck disable=SC2086
	printf '%d:%d' 0x${_s% *} 0x${_s#* }
}

cb_skip_all() {
	for c in start node-numbers sysfs-dev ioctl-capability ioctl-init getrandom nv-data \
		node-numbers-b socket-pcr16 cuse-pcr23-from-socket tpm12-startup node-removed; do
		vt_skip "$c" "$1"
	done
}

vm_guest() {
	if [ "$VT_DAEMON" != vtpm-bridge ]; then
		cb_skip_all "Debian's swtpm 0.7.1 is built without CUSE (no \`swtpm cuse\`)"
		return 0
	fi
	export TPM2TOOLS_TCTI=device:/dev/vtpm-a

	# ---- creation with the requested numbers, pid file, detach
	vt_run start cb_start vtpm-a --tpm2 --maj $CB_MAJOR --min 1
	if [ -c /dev/vtpm-a ]; then vt_pass node-at-exit-of-parent
	else vt_fail node-at-exit-of-parent "no /dev/vtpm-a when the parent exited: $(ls /dev | tr '\n' ' ')"; fi
	vt_same node-numbers "$CB_MAJOR:1" "$(cb_devnum /dev/vtpm-a)" "major:minor of /dev/vtpm-a"
	vt_same sysfs-dev "$CB_MAJOR:1" "$(cat /sys/class/cuse/vtpm-a/dev 2>/dev/null)" "/sys/class/cuse/vtpm-a/dev"
	pid_a=$(cat /tmp/vtpm-a.pid 2>/dev/null)
	if [ -n "$pid_a" ] && cb_alive "$pid_a"; then vt_pass pid-file
	else vt_fail pid-file "no live process in /tmp/vtpm-a.pid: $(cat /tmp/vtpm-a.pid 2>&1)"; fi

	# ---- refusals: a taken name, a taken major:minor
	# (no --pid, --log: the reason goes to stderr)
	mkdir -p /tmp/dup
	if "$VT_DAEMON_BIN" cuse -n vtpm-a --tpm2 --tpmstate dir=/tmp/dup -f > /tmp/dup.out 2>&1; then
		vt_fail refuse-name-taken "a second vtpm-a started"
	elif grep -q 'exists already' /tmp/dup.out; then
		vt_pass refuse-name-taken "$(tail -n 1 /tmp/dup.out)"
	else
		vt_fail refuse-name-taken "no reason given: $(cat /tmp/dup.out)"
	fi
	if "$VT_DAEMON_BIN" cuse -n vtpm-dup --tpm2 --tpmstate dir=/tmp/dup --maj $CB_MAJOR --min 1 -f \
			> /tmp/dup2.out 2>&1; then
		vt_fail refuse-devnum-taken "a second device on $CB_MAJOR:1 started"
	elif grep -q "$CB_MAJOR:1 is taken" /tmp/dup2.out; then
		vt_pass refuse-devnum-taken "$(tail -n 1 /tmp/dup2.out)"
	else
		vt_fail refuse-devnum-taken "no reason given: $(cat /tmp/dup2.out)"
	fi
	# a major the kernel refuses (>= 512): only the kernel knows, and says so by aborting
	if "$VT_DAEMON_BIN" cuse -n vtpm-bad --tpm2 --tpmstate dir=/tmp/dup --maj 4000 -f > /tmp/dup3.out 2>&1; then
		vt_fail refuse-kernel-refusal "a device on major 4000 started"
	elif grep -q 'refused to create' /tmp/dup3.out; then
		vt_pass refuse-kernel-refusal "$(tail -n 1 /tmp/dup3.out)"
	else
		vt_fail refuse-kernel-refusal "no reason given: $(cat /tmp/dup3.out)"
	fi
	[ ! -e /dev/vtpm-dup ] && [ ! -e /dev/vtpm-bad ] && vt_pass refused-leaves-no-node ||
		vt_fail refused-leaves-no-node "$(ls /dev/vtpm-*)"
	cb_alive "$pid_a" && [ -c /dev/vtpm-a ] && vt_pass refusals-leave-first-alone ||
		vt_fail refusals-leave-first-alone "vtpm-a is gone"

	# ---- swtpm_ioctl, every operation
	cb_ioctl vtpm-a ioctl-capability -c && cb_out ioctl-capability-value 'ptm capability is 0x16fff'
	cb_ioctl vtpm-a ioctl-getconfig -g && cb_out ioctl-config 'configuration flags: 0x0'
	cb_ioctl vtpm-a ioctl-info-before-init --info 1 && cb_out ioctl-info-1 '"family":"2.0"'
	cb_ioctl vtpm-a ioctl-init -i
	vt_run tpm2-startup tpm2_startup -c
	cb_ioctl vtpm-a ioctl-est-0 -e && cb_out ioctl-est-is-0 'tpmEstablished is 0'
	cb_ioctl vtpm-a ioctl-hash -h 'some data to hash'
	cb_ioctl vtpm-a ioctl-est-1 -e && cb_out ioctl-est-is-1 'tpmEstablished is 1'
	cb_ioctl vtpm-a ioctl-reset-est -r 3
	cb_ioctl vtpm-a ioctl-est-reset -e && cb_out ioctl-est-is-0-again 'tpmEstablished is 0'
	cb_ioctl vtpm-a ioctl-locality-3 -l 3
	cb_ioctl vtpm-a ioctl-locality-0 -l 0
	cb_ioctl vtpm-a ioctl-cancel -C
	cb_ioctl vtpm-a ioctl-store-volatile -v
	cb_ioctl vtpm-a ioctl-buffersize -b 0 && cb_out ioctl-buffersize-value 'TPM buffersize: 4096'
	if swtpm_ioctl --tpm-device /dev/vtpm-a -b 3000 > /tmp/bs.out 2>&1; then
		vt_fail ioctl-buffersize-running "set while running was accepted"
	else
		grep -q '0xa' /tmp/bs.out && vt_pass ioctl-buffersize-running ||
			vt_fail ioctl-buffersize-running "$(cat /tmp/bs.out)"
	fi
	cb_ioctl vtpm-a ioctl-info-2 --info 2 && cb_out ioctl-info-2-value '"TPMAttributes"'

	# ---- tpm2-tools over the device
	vt_run getrandom tpm2_getrandom 16 --hex
	vt_run pcrextend tpm2_pcrextend 16:sha256=0000000000000000000000000000000000000000000000000000000000000001
	pcr16=$(vt_pcr sha256:16)
	# sha256(32 zero bytes || 0...01)
	vt_same pcrread-16 90f4b39548df55ad6187a1d20d731ecee78c545b94afd16f42ef7592d99cd365 "$pcr16" "PCR16"
	# no resource manager on the device: transient objects are flushed by hand
	vt_run createprimary tpm2_createprimary -C o -G ecc256 -c /tmp/p.ctx
	tpm2_flushcontext -t
	vt_run create tpm2_create -C /tmp/p.ctx -G ecc256 -u /tmp/k.pub -r /tmp/k.priv
	tpm2_flushcontext -t
	vt_run load tpm2_load -C /tmp/p.ctx -u /tmp/k.pub -r /tmp/k.priv -c /tmp/k.ctx
	vt_run flush tpm2_flushcontext -t
	vt_run nvdefine tpm2_nvdefine 0x1500016 -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
	printf 'cuse-basic nv data 0123456789abc' > /tmp/nv.in	# 32 bytes
	vt_run nvwrite tpm2_nvwrite 0x1500016 -C o -i /tmp/nv.in
	vt_run nvread tpm2_nvread 0x1500016 -C o -s 32 -o /tmp/nv.out
	vt_same nv-data "$(cat /tmp/nv.in)" "$(cat /tmp/nv.out 2>/dev/null)" "NV contents"

	# ---- the data path as the kernel's tpm-dev: per-opener responses, partial reads, EBUSY
	# TPM2_GetRandom(8) and (16): responses of 20 and 28 bytes
	printf '\200\001\000\000\000\014\000\000\001\173\000\010' > /tmp/rand8.bin
	printf '\200\001\000\000\000\014\000\000\001\173\000\020' > /tmp/rand16.bin
	out=$(exec 3<>/dev/vtpm-a; dd bs=64 count=1 <&3 2>/dev/null | wc -c)
	vt_same read-without-command 0 "$out" "bytes read with no command written"
	out=$(exec 3<>/dev/vtpm-a
		dd if=/tmp/rand8.bin bs=12 count=1 >&3 2>/dev/null
		a=$(dd bs=4 count=1 <&3 2>/dev/null | od -An -tx1 | tr -d ' \n')
		b=$(dd bs=64 count=1 <&3 2>/dev/null | wc -c)
		c=$(dd bs=64 count=1 <&3 2>/dev/null | wc -c)
		echo "$a $b $c")
	vt_same partial-reads "80010000 16 0" "$out" "first 4 bytes, then the other 16, then 0"
	out=$(exec 3<>/dev/vtpm-a
		dd if=/tmp/rand8.bin bs=12 count=1 >&3 2>/dev/null
		if dd if=/tmp/rand8.bin bs=12 count=1 >&3 2>/tmp/ebusy.err; then echo accepted
		else grep -o 'busy' /tmp/ebusy.err; fi
		dd bs=64 count=1 <&3 2>/dev/null | wc -c)
	vt_same second-write-ebusy "busy 20" "$(echo $out)" "second write before the read; then the read"
	out=$(exec 3<>/dev/vtpm-a 4<>/dev/vtpm-a
		dd if=/tmp/rand8.bin bs=12 count=1 >&3 2>/dev/null
		dd if=/tmp/rand16.bin bs=12 count=1 >&4 2>/dev/null
		d=$(dd bs=64 count=1 <&4 2>/dev/null | wc -c)
		c=$(dd bs=64 count=1 <&3 2>/dev/null | wc -c)
		echo "$c $d")
	vt_same per-opener-responses "20 28" "$out" "response sizes of two openers (8 and 16 random bytes)"
	out=$(exec 3<>/dev/vtpm-a; head -c 5000 /dev/zero | dd bs=5000 count=1 >&3 2>&1 && echo accepted)
	case $out in
	*accepted*) vt_fail write-too-large "a 5000-byte write was accepted" ;;
	*) vt_pass write-too-large "$(echo "$out" | head -n 1)" ;;
	esac
	printf '\200\001\000\000\000\040\000\000\001\173\000\010' > /tmp/short.bin
	out=$(exec 3<>/dev/vtpm-a; dd if=/tmp/short.bin bs=12 count=1 >&3 2>&1 && echo accepted)
	case $out in
	*accepted*) vt_fail write-short-of-header "a write shorter than its header's size was accepted" ;;
	*) vt_pass write-short-of-header "$(echo "$out" | head -n 1)" ;;
	esac
	vt_run getrandom-after-errors tpm2_getrandom 8 --hex

	# ---- two instances on one fixed major
	vt_run start-b cb_start vtpm-b --tpm2 --maj $CB_MAJOR --min 2 --flags not-need-init,startup-clear
	pid_b=$(cat /tmp/vtpm-b.pid 2>/dev/null)
	vt_same node-numbers-b "$CB_MAJOR:2" "$(cb_devnum /dev/vtpm-b)" "major:minor of /dev/vtpm-b"
	vt_run getrandom-b tpm2_getrandom -T device:/dev/vtpm-b 8 --hex
	vt_run getrandom-a-again tpm2_getrandom 8 --hex

	# ---- state blobs: CUSE -> socket front
	cb_ioctl vtpm-a save-permanent --save permanent /tmp/a.perm
	cb_ioctl vtpm-a save-volatile --save volatile /tmp/a.vol
	cb_ioctl vtpm-a save-savestate --save savestate /tmp/a.ss
	vt_run save-permanent-by-read env SWTPM_IOCTL_BUFFERSIZE=100 swtpm_ioctl --tpm-device /dev/vtpm-a \
		--save permanent /tmp/a.perm.rd
	if cmp /tmp/a.perm /tmp/a.perm.rd && [ -s /tmp/a.perm ]; then
		vt_pass blob-by-read-same "$(wc -c < /tmp/a.perm) bytes"
	else
		vt_fail blob-by-read-same "$(wc -c < /tmp/a.perm) vs $(wc -c < /tmp/a.perm.rd) bytes, or they differ"
	fi
	mkdir -p /tmp/sockstate
	vt_run socket-start "$VT_DAEMON_BIN" socket --tpm2 --tpmstate dir=/tmp/sockstate \
		--ctrl type=unixio,path=/tmp/sock.ctrl --server type=unixio,path=/tmp/sock \
		--pid file=/tmp/sock.pid -d
	vt_run socket-load-permanent swtpm_ioctl --unix /tmp/sock.ctrl --load permanent /tmp/a.perm
	vt_run socket-load-volatile swtpm_ioctl --unix /tmp/sock.ctrl --load volatile /tmp/a.vol
	vt_run socket-init swtpm_ioctl --unix /tmp/sock.ctrl -i
	sock=swtpm:path=/tmp/sock	# the TCTI adds .ctrl for the ctrl socket
	vt_same socket-pcr16 "$pcr16" "$(TPM2TOOLS_TCTI=$sock vt_pcr sha256:16)" "PCR16 on the socket instance"
	vt_run socket-nvread env TPM2TOOLS_TCTI=$sock tpm2_nvread 0x1500016 -C o -s 32 -o /tmp/nv.sock
	vt_same socket-nv-data "$(cat /tmp/nv.in)" "$(cat /tmp/nv.sock 2>/dev/null)" "NV contents on the socket instance"

	# ---- and back: socket -> CUSE (the stopped CUSE TPM takes the blobs)
	vt_run socket-pcrextend env TPM2TOOLS_TCTI=$sock tpm2_pcrextend \
		23:sha256=0000000000000000000000000000000000000000000000000000000000000002
	pcr23=$(TPM2TOOLS_TCTI=$sock vt_pcr sha256:23)
	vt_run socket-save-permanent swtpm_ioctl --unix /tmp/sock.ctrl --save permanent /tmp/s.perm
	vt_run socket-save-volatile swtpm_ioctl --unix /tmp/sock.ctrl --save volatile /tmp/s.vol
	vt_run socket-shutdown swtpm_ioctl --unix /tmp/sock.ctrl -s
	cb_ioctl vtpm-a ioctl-stop --stop
	vt_run tpm-stopped-reply sh -c '! tpm2_getrandom 8 --hex'
	# a blob of exactly the chunk size takes two transfers; garbage is refused at the second
	head -c 3072 /dev/zero | tr '\000' 'x' > /tmp/garbage3072
	if swtpm_ioctl --tpm-device /dev/vtpm-a --load permanent /tmp/garbage3072 > /tmp/g.out 2>&1; then
		vt_fail exact-chunk-garbage-refused "a 3072-byte garbage blob was accepted"
	else
		grep -q '0x3' /tmp/g.out && vt_pass exact-chunk-garbage-refused "$(cat /tmp/g.out)" ||
			vt_fail exact-chunk-garbage-refused "$(cat /tmp/g.out)"
	fi
	# read()/write() continuation of GET/SET_STATEBLOB (swtpm_ioctl with SWTPM_IOCTL_BUFFERSIZE)
	vt_run load-permanent-by-write env SWTPM_IOCTL_BUFFERSIZE=100 swtpm_ioctl --tpm-device /dev/vtpm-a \
		--load permanent /tmp/s.perm
	cb_ioctl vtpm-a load-volatile --load volatile /tmp/s.vol
	cb_ioctl vtpm-a init-after-load -i
	vt_same cuse-pcr23-from-socket "$pcr23" "$(vt_pcr sha256:23)" "PCR23 after the socket's blobs"
	vt_same cuse-pcr16-kept "$pcr16" "$(vt_pcr sha256:16)" "PCR16 after the socket's blobs"

	# ---- a TPM 1.2 instance: TPM_Startup(ST_CLEAR) by write()/read()
	vt_run start-c cb_start vtpm-c
	cb_ioctl vtpm-c tpm12-init -i
	cb_ioctl vtpm-c tpm12-info --info 1 && cb_out tpm12-family '"family":"1.2"'
	# one open file for both: each opener has its own response
	printf '\000\301\000\000\000\014\000\000\000\231\000\001' > /tmp/startup12.bin
	resp=$(exec 3<>/dev/vtpm-c; dd if=/tmp/startup12.bin bs=12 count=1 >&3 2>/dev/null
		dd bs=64 count=1 <&3 2>/dev/null | od -An -tx1 | tr -d ' \n')
	vt_same tpm12-startup "00c40000000a00000000" "$resp" "TPM_Startup response"
	cb_ioctl vtpm-c tpm12-shutdown -s

	# ---- PTM_SHUTDOWN: the daemons exit and the nodes go
	cb_ioctl vtpm-b shutdown-b -s
	cb_ioctl vtpm-a shutdown-a -s
	if cb_dead "$pid_a" 10; then vt_pass daemon-exit-a; else vt_fail daemon-exit-a "still running"; fi
	if cb_dead "$pid_b" 10; then vt_pass daemon-exit-b; else vt_fail daemon-exit-b "still running"; fi
	i=0
	while [ -e /dev/vtpm-a ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ ! -e /dev/vtpm-a ] && [ ! -e /sys/class/cuse/vtpm-a ] && vt_pass node-removed ||
		vt_fail node-removed "$(ls -l /dev/vtpm-a 2>&1)"
	[ ! -e /tmp/vtpm-a.pid ] && vt_pass pid-file-removed || vt_fail pid-file-removed "/tmp/vtpm-a.pid is left"
	grep -q . /tmp/vtpm-a.log && vt_info "vtpm-a log: $(tail -n 3 /tmp/vtpm-a.log | tr '\n' ' ')"
}
