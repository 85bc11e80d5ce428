# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Power cuts at every flush point (issue 13, point 2).  The state directory
# lives on a file system on the kernel's dm-log-writes target, which logs
# every write to a second device in the order the data became durable (a
# write once a flush covered it, a FUA write when it completed):
#
#   /tmp/data.img -> /dev/loop0 --+
#                                 +-- dmsetup log-writes: /dev/mapper/pclw (mkfs, mounted)
#   /tmp/log.img  -> /dev/loop1 --+
#
# The job's daemon, `socket --tpm2 --tpmstate dir=...` plus the variant's
# policy (--durability sync | bounded=1000; swtpm has no such option),
# serves tpm2-tools through the swtpm TCTI.  An NV counter is defined and
# incremented PC_N+1 times; after each acknowledged increment the guest
# sends the target a mark naming the value and the time, "ack-VALUE-MS".
# Then the daemon is SIGKILLed (nothing is flushed for it) and the mark
# "killed" ends what is checked.
#
# tools/logreplay.c replays the log onto a zeroed image and stops at every
# flush or FUA entry and at every mark from the mark "setup" (file system
# made, state directory synced) to "killed": each such prefix is a state
# the disk could hold after a power cut there.  A copy of the image is
# mounted (journal recovery; not for raw), the job's daemon is started on
# its state and tools/nvread-sock.c reads the counter.  The promise at a point: every
# increment acknowledged at least MS before the last mark seen is there (MS
# 0 for sync, 1000 for bounded=1000; the bounded variants also wait 2 s
# after the last increment, mark "settled", and owe every increment).
#
#   points         the replay saw every ack mark and "killed", and some
#                  point had a promise: the checks below judged something
#   flushes        some point was a flush or FUA write: the stores were
#                  made durable while the daemon ran
#   state-loads    at every point the daemon starts on the state and
#                  answers, and once a point held the counter no later one
#                  lacks it (the state was not lost, emptied or reset)
#   acked-kept     at every point the counter holds at least the promised
#                  value (no counter while one was promised is a loss too),
#                  and never more than was written
#
# An image no write changed since the last point is judged once, and a
# state byte for byte like an earlier one has that one's value.
# Variants: FS-POLICY; FS raw is the file:// backend (swtpm's linear
# format) on the device itself, each replayed image loaded as a file://
# state (no raw-bounded: ours always syncs file://).  Debian's swtpm 0.7.1
# never syncs its state directory: it loses what the file system had not
# committed yet (ext4: its 5 s journal interval; xfs wrote nothing at all
# during the run), so its acked-kept (and flushes, when no commit fell in
# the run) is "SKIP ... XFAIL swtpm".  Its file:// store ends in an msync,
# which flushes.

VM_DESC="power cut at every flush point (dm-log-writes replay): the state loads and holds every acknowledged NV increment the durability policy promised"
VM_VARIANTS="ext4-sync ext4-bounded xfs-sync xfs-bounded raw-sync"
VM_DAEMON=guest
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_nvdefine /usr/bin/tpm2_nvincrement
/usr/sbin/dmsetup /usr/sbin/mkfs.ext4 /usr/sbin/mkfs.xfs"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0 /usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="loop dm-log-writes crc32c_generic ext4 xfs"	# (metadata checksums need crc32c)
VM_TOOLS="logreplay nvread-sock"
VM_TIMEOUT=420
VM_COST=60

PC_N=12			# increments after the first (~4 flush points each)
PC_NV=0x1500030
PC_DATA_MB=16
PC_LOG_MB=64

vm_stage() {
	install -D -m 0644 /etc/mke2fs.conf "$1/etc/mke2fs.conf"
}

# pc_ms: milliseconds since boot
pc_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# pc_mark TEXT: a mark in the log, after everything the target logged so far
pc_mark() { dmsetup message pclw 0 mark "$1"; }

# pc_daemon_start NAME TPMSTATE: the job's daemon on /tmp/NAME.sock (and
# .ctrl) in the background, with --tpmstate TPMSTATE and the variant's
# policy arguments; sets PC_PID.  Returns 1 if its sockets do not appear
# within 15 s.
pc_daemon_start() {
	rm -f "/tmp/$1.sock" "/tmp/$1.sock.ctrl"
	# shellcheck disable=SC2086  # the policy's arguments
	"$VT_DAEMON_BIN" socket --tpm2 --tpmstate "$2" --flags not-need-init,startup-clear \
		--ctrl "type=unixio,path=/tmp/$1.sock.ctrl" --server "type=unixio,path=/tmp/$1.sock" \
		--log "file=/tmp/$1.log" $PC_ARGS >"/tmp/$1.out" 2>&1 &
	PC_PID=$!
	_i=0
	while [ ! -S "/tmp/$1.sock" ] || [ ! -S "/tmp/$1.sock.ctrl" ]; do
		vt_alive $PC_PID && [ $_i -lt 150 ] || return 1
		sleep 0.1; _i=$((_i + 1))
	done
}

# pc_kill PID: SIGKILL and reap
pc_kill() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# pc_nvread SOCKNAME: the counter's value (decimal) through that daemon;
# "absent" if the TPM has no such index or it was never incremented; else
# returns 1 with the error in /tmp/pc-nvread.err
pc_nvread() { nvread-sock "/tmp/$1.sock" $PC_NV 2>/tmp/pc-nvread.err; }

# pc_policy: PC_FS (the file system, or raw: the file:// backend on the
# device itself), PC_ARGS (the daemon's arguments) and PC_MS (the bound) of
# the variant.  Debian's swtpm has no such option and is judged by the same
# promise.
# shellcheck disable=SC2153  # VM_VARIANT and VT_DAEMON come from /vm/env
pc_policy() {
	PC_FS=${VM_VARIANT%%-*}
	case $PC_FS in
	ext4 | xfs | raw) ;;
	*) vt_fail policy "unknown file system in variant $VM_VARIANT"; return 1 ;;
	esac
	case ${VM_VARIANT#*-} in
	sync) PC_MS=0 PC_ARGS="--durability sync" ;;
	bounded) PC_MS=1000 PC_ARGS="--durability bounded=$PC_MS" ;;
	*) vt_fail policy "unknown policy in variant $VM_VARIANT"; return 1 ;;
	esac
	[ "$VT_DAEMON" = swtpm ] && PC_ARGS=""
	vt_info "$PC_FS, policy ${VM_VARIANT#*-}: bound $PC_MS ms, daemon arguments '$PC_ARGS'"
}

# pc_record: the live part; the daemon writes its state through pclw while
# marks name every acknowledged value.  Returns 1 if nothing can be checked.
pc_record() {
	if ! { truncate -s ${PC_DATA_MB}M /tmp/data.img && truncate -s ${PC_LOG_MB}M /tmp/log.img &&
		losetup /dev/loop0 /tmp/data.img && losetup /dev/loop1 /tmp/log.img; }; then
		vt_fail devices "loop devices: $(losetup -a 2>&1 | tr '\n' ' ')"
		return 1
	fi
	# (no udev here: dmsetup mknodes makes /dev/mapper/pclw)
	# shellcheck disable=SC2016  # $1 is the inner shell's
	vt_run dmsetup-create sh -c 'dmsetup create pclw --table "$1" && dmsetup mknodes pclw' sh \
		"0 $((PC_DATA_MB * 2048)) log-writes /dev/loop0 /dev/loop1" || return 1
	_state=dir=/mnt/pc/state
	case $PC_FS in
	ext4) vt_run mkfs mkfs.ext4 -q -F -b 4096 /dev/mapper/pclw || return 1 ;;
	# (fstests' variables let mkfs.xfs make one under 300 MB)
	xfs) vt_run mkfs env TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f /dev/mapper/pclw || return 1 ;;
	raw) _state=backend-uri=file:///dev/mapper/pclw ;;
	esac
	if [ "$PC_FS" != raw ]; then
		mkdir -p /mnt/pc
		vt_run mount mount -t "$PC_FS" /dev/mapper/pclw /mnt/pc || return 1
		mkdir /mnt/pc/state && sync
	fi
	pc_mark setup
	if ! pc_daemon_start pc "$_state"; then
		vt_fail daemon-start "$(tail -n 3 /tmp/pc.out /tmp/pc.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		return 1
	fi
	vt_pass daemon-start "pid $PC_PID"
	export TPM2TOOLS_TCTI=swtpm:path=/tmp/pc.sock
	vt_run nvdefine tpm2_nvdefine $PC_NV -C o -s 8 -a "nt=counter|ownerread|ownerwrite" &&
		vt_run nvincrement-first tpm2_nvincrement $PC_NV -C o || return 1
	if ! PC_V=$(pc_nvread pc) || [ "$PC_V" = absent ]; then
		vt_fail nvread-first "${PC_V:-}$(tail -n 1 /tmp/pc-nvread.err)"
		return 1
	fi
	pc_mark "ack-$PC_V-$(pc_ms)"
	_t0=$(pc_ms) _i=0
	while [ $_i -lt $PC_N ]; do
		tpm2_nvincrement $PC_NV -C o 2>/tmp/pc-inc.err ||
			{ vt_fail increments "increment $((_i + 1)): $(tail -n 1 /tmp/pc-inc.err)"; break; }
		PC_V=$((PC_V + 1))
		pc_mark "ack-$PC_V-$(pc_ms)"
		_i=$((_i + 1))
	done
	[ $_i -eq $PC_N ] && vt_pass increments "$PC_N acknowledged in $(($(pc_ms) - _t0)) ms, last value $PC_V"
	vt_same live-value "$PC_V" "$(pc_nvread pc)" "the counter read back live"
	unset TPM2TOOLS_TCTI
	# what a bounded policy owes after its bound: every increment
	if [ "$PC_MS" -gt 0 ]; then
		sleep $((PC_MS / 1000 + 1))
		pc_mark "settled-$(pc_ms)"
	fi
	pc_kill $PC_PID
	pc_mark killed
	[ "$PC_FS" = raw ] || umount /mnt/pc
	# "<entries> <last sector>", and "logging_disabled" if the log overflowed
	vt_run dmsetup-status dmsetup status pclw || return 1
	if grep -q logging_disabled "$VT_OUT"; then
		vt_fail log-complete "the target stopped logging: $(cat "$VT_OUT")"
		return 1
	fi
	vt_run teardown sh -c 'dmsetup remove pclw && losetup -d /dev/loop0 && losetup -d /dev/loop1'
	vt_run log-list sh -c 'logreplay list /tmp/log.img >/tmp/pc.list'
}

# pc_judge VALUE: the outcome of one replayed image: ok; noload (the
# daemon did not start or answer); reset (no counter, though an earlier
# point held it: the state was lost or emptied); lost (less than PC_REQ,
# the promised value, empty before any promise); bogus (more than PC_V, the
# last value written).  PC_HELD is set once a point held the counter.
pc_judge() {
	case $1 in
	absent) if [ -n "$PC_HELD" ]; then echo reset
		elif [ -n "$PC_REQ" ]; then echo lost
		else echo ok; fi ;;
	"" | *[!0-9]*) echo noload ;;
	*) if [ -n "$PC_REQ" ] && [ "$1" -lt "$PC_REQ" ]; then echo lost
	   elif [ "$1" -gt "$PC_V" ]; then echo bogus
	   else echo ok; fi ;;
	esac
}

# pc_image_value: a copy of /tmp/work.img, mounted (journal recovery) unless
# raw, and the counter read from the daemon started on its state: a value,
# absent or noload
pc_image_value() {
	cp /tmp/work.img /tmp/check.img
	if [ "$PC_FS" = raw ]; then
		pc_state_value backend-uri=file:///tmp/check.img /tmp/check.img
		return
	fi
	if ! losetup /dev/loop2 /tmp/check.img; then echo noload; return; fi
	if ! mount -t "$PC_FS" /dev/loop2 /mnt/chk 2>/tmp/pc-mount.err; then
		losetup -d /dev/loop2
		echo "    | mount: $(cat /tmp/pc-mount.err)" >&2
		echo noload; return
	fi
	mkdir -p /mnt/chk/state
	pc_state_value dir=/mnt/chk/state /mnt/chk/state
	umount /mnt/chk
	losetup -d /dev/loop2
}

# pc_state_value TPMSTATE PATH: the counter in the state at PATH (a state
# directory or a file://).  The daemon reads nothing else, so a state byte
# for byte like an earlier one has that one's value (/tmp/pc-states:
# "DIGEST VALUE" lines, one per daemon start).
pc_state_value() {
	_key=$(find "$2" -type f | sort | xargs -r sha256sum | sha256sum | cut -c1-16)
	_got=$(awk -v k="$_key" '$1 == k { print $2; exit }' /tmp/pc-states)
	if [ -z "$_got" ]; then
		echo "    | state $_key: $(stat -c '%n %s' "$2" "$2"/* 2>/dev/null | tr '\n' ' ')" >&2
		if ! pc_daemon_start chk "$1"; then
			echo "    | daemon: $(tail -n 2 /tmp/chk.out /tmp/chk.log 2>/dev/null | tr '\n' ' ')" >&2
			_got=noload
		elif ! _got=$(pc_nvread chk); then
			echo "    | nvread: $(tail -n 1 /tmp/pc-nvread.err)" >&2
			_got=noload
		fi
		pc_kill $PC_PID
		echo "$_key $_got" >>/tmp/pc-states
	fi
	echo "$_got"
}

# pc_replay: every point of /tmp/pc.list from the mark "setup" to "killed"
pc_replay() {
	truncate -s ${PC_DATA_MB}M /tmp/work.img
	mkdir -p /mnt/chk
	# acks seen so far, "VALUE MS" lines; daemon starts (pc_state_value)
	: >/tmp/pc-acks
	: >/tmp/pc-states
	# _from, _off: the first entry not applied yet; _dirty: one that writes
	PC_REQ="" PC_HELD="" _from=0 _off="" _dirty=0 _on=0 _tlast=0 _val="" _out="" _killed=0
	_points=0 _images=0 _with_req=0 _acks=0 _flushes=0
	_noload=0 _reset=0 _lost=0 _bogus=0 _bad_load="" _bad_kept=""
	while read -r _i _o _fl _sec _nr _mark; do
		[ "$_i" = "$_from" ] && _off=$_o
		case $_fl in *W* | *D*) _dirty=1 ;; esac
		case $_fl in
		M) case $_mark in
		   setup) _on=1 ;;
		   ack-*) _v=${_mark#ack-}; _t=${_v#*-}; _v=${_v%-*}
			  echo "$_v $_t" >>/tmp/pc-acks; _tlast=$_t; _acks=$((_acks + 1)) ;;
		   settled-*) _tlast=${_mark#settled-} ;;
		   killed) _killed=1 ;;
		   esac ;;
		*F* | *U*) [ $_on = 1 ] && _flushes=$((_flushes + 1)) ;;
		*) continue ;;
		esac
		[ $_on = 1 ] || continue
		_points=$((_points + 1))
		PC_REQ=$(awk -v t="$_tlast" -v ms="$PC_MS" '$2 + ms <= t { r = $1 } END { print r }' /tmp/pc-acks)
		[ -n "$PC_REQ" ] && _with_req=$((_with_req + 1))
		if [ $_dirty = 1 ] || [ -z "$_val" ]; then
			if ! logreplay apply /tmp/log.img /tmp/work.img "$_from" "$_off" $((_i + 1)); then
				vt_fail replay "logreplay apply $_from $_off $((_i + 1)) failed"
				return 1
			fi
			_from=$((_i + 1)) _dirty=0
			_val=$(pc_image_value)
			_images=$((_images + 1))
		fi
		_out=$(pc_judge "$_val")
		_what="entry $_i ($_fl${_mark:+ $_mark}): promised ${PC_REQ:-nothing}, holds $_val"
		echo "    | point $_what: $_out"
		case $_out in
		noload) _noload=$((_noload + 1)); _bad_load=${_bad_load:-$_what} ;;
		reset) _reset=$((_reset + 1)); _bad_load=${_bad_load:-$_what} ;;
		lost) _lost=$((_lost + 1)); _bad_kept=${_bad_kept:-$_what} ;;
		bogus) _bogus=$((_bogus + 1)); _bad_kept=${_bad_kept:-$_what} ;;
		esac
		case $_val in *[!0-9]* | "") ;; *) PC_HELD=1 ;; esac
		[ $_killed = 1 ] && break
	done </tmp/pc.list
	_sum="$_points points ($_flushes flush/FUA, $_acks ack marks; $_images distinct images, $(wc -l </tmp/pc-states) distinct states; $_with_req with a promise)"
	vt_info "$_sum: $_noload did not load, $_reset lost the state, $_lost lost an acknowledged increment, $_bogus held an unwritten value"
	if [ $_killed = 1 ] && [ $_acks -eq $((PC_N + 1)) ] && [ $_with_req -gt 0 ]; then
		vt_pass points "$_sum"
	else
		vt_fail points "$_sum; expected $((PC_N + 1)) ack marks and the mark killed"
	fi
	if [ $_flushes -gt 0 ]; then vt_pass flushes "$_flushes flush/FUA points"
	else vt_xfail_swtpm flushes "no flush or FUA write between the marks setup and killed: nothing stored was durable"; fi
	if [ $((_noload + _reset)) -eq 0 ]; then vt_pass state-loads "$_images images"
	else vt_xfail_swtpm state-loads "$_noload of $_points points did not load, $_reset lost the state; first $_bad_load"; fi
	if [ $((_lost + _bogus)) -eq 0 ]; then vt_pass acked-kept "$_with_req points with a promise"
	else vt_xfail_swtpm acked-kept "$_lost of $_points points lost an acknowledged increment, $_bogus held an unwritten value; first $_bad_kept"; fi
}

vm_guest() {
	pc_policy || return 0
	pc_record || return 0
	pc_replay
}
