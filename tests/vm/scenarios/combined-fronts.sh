# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# One TPM, three fronts, one process (issue 11): with no subcommand the
# daemon serves the CUSE device /dev/vtpm-cf, the vtpm-proxy nodes
# /dev/tpmN + /dev/tpmrmN (a container's TPM) and the socket front
# (/tmp/cf.sock, ctrl /tmp/cf.sock.ctrl) at once:
#
#   vtpm-bridge --tpm2 --tpmstate dir=D --cuse vtpm-cf --vtpm-proxy \
#       --ctrl type=unixio,path=/tmp/cf.sock.ctrl --server type=unixio,path=/tmp/cf.sock
#
# tpm2-tools reach them as device:/dev/tpmrmN (the kernel's resource
# manager, always locality 0), device:/dev/vtpm-cf and swtpm:path=/tmp/cf.sock
# (the swtpm TCTI of tss2 3.2.1 takes path= and uses path.ctrl for its
# control messages; note that its initialization sends CMD_SET_LOCALITY(0)
# on the ctrl socket, so every tpm2-tools run through the socket front sets
# that front's locality to 0 first).  swtpm_ioctl reaches the control sides
# as --tpm-device /dev/vtpm-cf and --unix /tmp/cf.sock.ctrl.  Raw commands
# go through proxy-raw (CUSE, tpmrmN) and tpm2_send (socket): tpm2_startup
# -c reports success when the TPM answers TPM_RC_INITIALIZE, so Startup is
# sent raw where its answer matters.
#
# The rules between fronts, each shown:
#   locality   per front: at CUSE locality 3 PCR 17 extends through CUSE
#              (TPM_RC_LOCALITY 0x907 at 0), not through tpmrmN or the socket
#   cancel     cancels only the asking front's running command: four RSA-2048
#              CreatePrimary through tpmrmN survive cancels (every 0.1 s,
#              all along) on the socket's and on the CUSE's control side;
#              one through CUSE is cancelled (0x909) by the CUSE's own
#              cancels, the first 0.3 s into it (retried with a new template
#              when the keygen ended first), one through the socket by the
#              socket's
#   established one flag: CUSE and socket agree, and a reset on one clears it
#              for both
#   stop       every front gets a defined error (the 10-byte not-running
#              reply, rc 0x101), tpmrmN too, never a hang
#   reset      INIT on a control side: the resetter owns TPM2_Startup;
#              tpmrmN gets TPM_RC_INITIALIZE (0x100) meanwhile; 10 s after
#              the INIT with no Startup, the daemon sends Startup(CLEAR)
#              before tpmrmN's next command (and logs it), and a late
#              Startup gets 0x100; NV data survives
#   blobs      GET_STATEBLOB through CUSE while a container extends PCRs in a
#              loop: a blob, the loop sees no error; STOP/INIT under that
#              loop gives only defined errors; the blob loads back
#   container  tpmrmN bind-mounted alone into an empty /dev of a new mount +
#              PID namespace (busybox unshare): tpm2-tools work there
#   idle       every front open and idle for 10 s: at most 1 clock tick of CPU
#
# Debian's swtpm: `swtpm chardev --vtpm-proxy --tpm2 --ctrl ...` is the
# anchor for the vtpm-proxy + ctrl-socket rules (locality on ctrl versus the
# container, cancel, stop, INIT then the container, established, the
# container, idle CPU); it has no CUSE front and chardev no data socket, so
# the rows that need those are SKIPs.  A rule swtpm breaks, seen broken in
# the run, is its "SKIP ... XFAIL swtpm: ..." (vt_xfail_swtpm).

VM_DESC="CUSE + vtpm-proxy + socket fronts in one process: cross-front PCR/NV, locality, cancel, established, stop, reset/Startup ownership, blobs under load, a namespaced container, idle CPU"
VM_DAEMON=guest
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_* /usr/bin/swtpm_ioctl"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0
/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse tpm_vtpm_proxy"
VM_TOOLS="proxy-raw"
VM_TIMEOUT=420
VM_COST=65

CF_CUSE=vtpm-cf
CF_SOCK=/tmp/cf-run/cf.sock	# in the daemon user's directory: it removes them at exit
CF_CTRL=/tmp/cf-run/cf.sock.ctrl
CF_NV=0x1500021
CF_D1=0000000000000000000000000000000000000000000000000000000000000001
CF_D2=0000000000000000000000000000000000000000000000000000000000000002
CF_D3=0000000000000000000000000000000000000000000000000000000000000003
CF_GETRAND=80010000000c0000017b0008
CF_STARTUP=80010000000c000001440000
CF_NOT_RUNNING=80010000000a00000101
CF_INITIALIZE=80010000000a00000100
CF_OK10=80010000000a00000000

# cf_skip WHY CHECK...: SKIP each CHECK
cf_skip() {
	_why=$1; shift
	for _c in "$@"; do vt_skip "$_c" "$_why"; done
}

cf_ours() { [ "$VT_DAEMON" != swtpm ]; }

# cf_tcti rm|cuse|sock: the TCTI string of that front
cf_tcti() {
	case $1 in
	rm) echo "device:/dev/tpmrm$CF_N" ;;
	cuse) echo "device:/dev/$CF_CUSE" ;;
	sock) echo "swtpm:path=$CF_SOCK" ;;
	esac
}

# cf_ioctl cuse|sock ARGS...: swtpm_ioctl on that front's control side
cf_ioctl() {
	_f=$1; shift
	case $_f in
	cuse) swtpm_ioctl --tpm-device "/dev/$CF_CUSE" "$@" ;;
	sock) swtpm_ioctl --unix "$CF_CTRL" "$@" ;;
	esac
}

# cf_tool FRONT TOOL ARGS...: a tpm2 tool on FRONT, output in /tmp/cf-tool.out;
# its exit status; CF_RC is the TPM's response code it reports ("0x00000907"), or ""
cf_tool() {
	_t=$(cf_tcti "$1"); _tool=$2; shift 2
	"$_tool" -T "$_t" "$@" >/tmp/cf-tool.out 2>&1
	_st=$?
	CF_RC=$(sed -n 's/.*ErrorCode (\(0x[0-9a-fA-F]*\)).*/\1/p' /tmp/cf-tool.out | tail -n 1)
	return $_st
}

# cf_why: the last line of the last cf_tool's output, for a FAIL text
cf_why() { grep . /tmp/cf-tool.out | tail -n 1 | cut -c1-200; }

# cf_pcr FRONT N: sha256 PCR N read through FRONT (lower-case hex)
cf_pcr() { TPM2TOOLS_TCTI=$(cf_tcti "$1") vt_pcr "sha256:$2"; }

# cf_raw FRONT HEX: one raw command, the response as hex (or what went wrong)
cf_raw() {
	case $1 in
	rm) _o=$(proxy-raw -t 20 "/dev/tpmrm$CF_N" "$2") ;;
	cuse) _o=$(proxy-raw -t 20 "/dev/$CF_CUSE" "$2") ;;
	sock)
		printf '%s' "$2" | xxd -r -p >/tmp/cf-cmd.bin
		rm -f /tmp/cf-resp.bin
		if tpm2_send -T "$(cf_tcti sock)" -o /tmp/cf-resp.bin </tmp/cf-cmd.bin >/tmp/cf-send.out 2>&1; then
			echo "resp=$(xxd -p /tmp/cf-resp.bin | tr -d '\n')"
		else
			echo "tpm2_send failed: $(grep . /tmp/cf-send.out | tail -n 1)"
		fi
		return ;;
	esac
	echo "$_o"
}

# cf_resp LINE: the resp= part of a cf_raw line
cf_resp() { echo "$1" | sed -n 's/.*resp=\([0-9a-f]*\).*/\1/p'; }

# cf_est FRONT: tpmEstablished (0/1) as the control side tells it
cf_est() { cf_ioctl "$1" -e 2>&1 | sed -n 's/^tpmEstablished is \([01]\)$/\1/p'; }

cf_dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ------------------------------------------------------------ start

cf_start() {
	vt_user_dir /tmp/cf-state /tmp/cf-run
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if cf_ours; then
		vt_proxy_launch cf "$VT_DAEMON_BIN" --tpm2 --tpmstate dir=/tmp/cf-state --cuse $CF_CUSE \
			--vtpm-proxy --ctrl "type=unixio,path=$CF_CTRL" --server "type=unixio,path=$CF_SOCK" \
			--log file=/tmp/cf.log,level=2 --pid file=/tmp/cf.pid $VT_SANDBOX
	else
		vt_proxy_launch cf "$VT_DAEMON_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/cf-state \
			--ctrl "type=unixio,path=$CF_CTRL" --log file=/tmp/cf.log,level=2 --pid file=/tmp/cf.pid $VT_SANDBOX
	fi
}

# cf_nodes: everything the daemon serves exists (waited for 20 s)
cf_nodes() {
	_want="/dev/tpm$CF_N /dev/tpmrm$CF_N $CF_CTRL"
	cf_ours && _want="$_want /dev/$CF_CUSE $CF_SOCK"
	_late=""
	for _x in $_want; do
		case $VT_PROXY_AT_LINE in *" ${_x#/dev/} "*) continue ;; esac
		case $_x in /dev/tpm*) _late="$_late $_x" ;; esac
	done
	for _x in $_want; do
		vt_wait_path "$_x" 20 || { vt_fail nodes "no $_x 20 s after the device line"; return 1; }
	done
	vt_pass nodes "$_want${_late:+ (after the line:$_late)}"
}

# ------------------------------------------------------------ cross-front data

cf_cross() {
	if ! cf_ours; then
		cf_skip "needs the CUSE front and the socket front (swtpm has no CUSE, swtpm chardev no data socket)" \
			getrandom-cuse getrandom-sock pcr16-from-rm pcr16-from-cuse pcr16-from-sock \
			nv-from-rm nv-from-cuse nv-from-sock
		vt_run getrandom-rm tpm2_getrandom -T "$(cf_tcti rm)" 16 --hex
		return 0
	fi
	for f in rm cuse sock; do vt_run "getrandom-$f" tpm2_getrandom -T "$(cf_tcti $f)" 16 --hex; done
	# a PCR extended through one front reads back through all three
	for f in rm cuse sock; do
		old=$(cf_pcr rm 16)
		cf_tool $f tpm2_pcrextend "16:sha256=$CF_D1" || vt_info "pcrextend through $f: $(cf_why)"
		want=$(vt_extend "$old" $CF_D1)
		vt_same "pcr16-from-$f" "$want $want $want" "$(cf_pcr rm 16) $(cf_pcr cuse 16) $(cf_pcr sock 16)" \
			"PCR16 through rm, cuse, sock after one extend through $f from '$old'"
	done
	# an NV index: defined through the socket, written through each front in
	# turn, read back through the other two
	cf_tool sock tpm2_nvdefine 0x1500020 -C o -s 32 -a "ownerread|ownerwrite" ||
		vt_info "nvdefine 0x1500020 through sock: $(cf_why)"
	for f in rm cuse sock; do
		printf 'written through %-5s 0123456789' "$f" >/tmp/cf-nv.in	# 32 bytes
		cf_tool $f tpm2_nvwrite 0x1500020 -C o -i /tmp/cf-nv.in || vt_info "nvwrite through $f: $(cf_why)"
		got=""
		for r in rm cuse sock; do
			[ $r = $f ] && continue
			rm -f /tmp/cf-nv.out
			cf_tool $r tpm2_nvread 0x1500020 -C o -s 32 -o /tmp/cf-nv.out
			got="$got$r:$(cat /tmp/cf-nv.out 2>/dev/null);"
		done
		want=""
		for r in rm cuse sock; do [ $r = $f ] || want="$want$r:$(cat /tmp/cf-nv.in);"; done
		vt_same "nv-from-$f" "$want" "$got" "NV 0x1500020 read through the other fronts"
	done
	cf_tool sock tpm2_nvundefine 0x1500020 -C o
}

# ------------------------------------------------------------ locality

# cf_ext17 FRONT: extend PCR 17 through FRONT; CF_E is "ok" or the TPM's
# rc; CF_P17 follows the successful extends
cf_ext17() {
	if cf_tool "$1" tpm2_pcrextend "17:sha256=$CF_D3"; then
		CF_P17=$(vt_extend "$CF_P17" $CF_D3)
		CF_E=ok
	else
		CF_E=${CF_RC:-"failed: $(cf_why)"}
	fi
}

# cf_expect CHECK GOT WANT TEXT: PASS if GOT is WANT
cf_expect() {
	if [ "$2" = "$3" ]; then vt_pass "$1" "$4: $2"
	else vt_fail "$1" "$4: $2, expected $3"; fi
}

cf_locality() {
	CF_P17=$(cf_pcr rm 17)
	# (PCR 17: TPM_RC_LOCALITY at locality 0, extendable at 3)
	cf_ext17 rm
	cf_expect loc-rm-extend17-at-0 "$CF_E" 0x00000907 "PCR 17 extend through tpmrm$CF_N at locality 0"
	if cf_ours; then
		vt_run loc-cuse-set-3 cf_ioctl cuse -l 3
		cf_ext17 cuse
		cf_expect loc-cuse3-extend17 "$CF_E" ok "PCR 17 extend through CUSE at locality 3"
		cf_ext17 rm
		case $CF_E in
		0x00000907) vt_pass loc-rm-while-cuse3 "the container (tpmrm$CF_N) is still at locality 0: $CF_E" ;;
		ok) vt_fail loc-rm-while-cuse3 "CUSE's locality 3 leaked to tpmrm$CF_N: its PCR 17 extend succeeded" ;;
		*) vt_fail loc-rm-while-cuse3 "PCR 17 extend through tpmrm$CF_N: $CF_E, expected 0x00000907" ;;
		esac
		cf_ext17 cuse
		cf_expect loc-cuse-still-3 "$CF_E" ok "CUSE after the container's command"
		cf_ext17 sock
		cf_expect loc-sock-at-0 "$CF_E" 0x00000907 "PCR 17 extend through the socket front"
		cf_ext17 cuse
		cf_expect loc-cuse-3-after-sock "$CF_E" ok \
			"CUSE after the socket front's command (whose TCTI set the socket's locality 0)"
	else
		cf_skip "no CUSE front in swtpm" loc-cuse-set-3 loc-cuse3-extend17 loc-rm-while-cuse3 \
			loc-cuse-still-3 loc-cuse-3-after-sock
		cf_skip "no data socket in swtpm chardev" loc-sock-at-0
	fi
	# the socket's control side at 3: tpmrmN (and CUSE, now at 0) stay denied
	vt_run loc-sock-set-3 cf_ioctl sock -l 3
	cf_ext17 rm
	case $CF_E in
	0x00000907) vt_pass loc-rm-while-sock3 "the container (tpmrm$CF_N) is still at locality 0: $CF_E" ;;
	ok) vt_xfail_swtpm loc-rm-while-sock3 "the ctrl channel's locality 3 applies to the container's commands: a PCR 17 extend through tpmrm$CF_N succeeded" ;;
	*) vt_fail loc-rm-while-sock3 "PCR 17 extend through tpmrm$CF_N: $CF_E, expected 0x00000907" ;;
	esac
	if cf_ours; then
		vt_run loc-cuse-set-0 cf_ioctl cuse -l 0
		cf_ext17 cuse
		cf_expect loc-cuse0-while-sock3 "$CF_E" 0x00000907 "PCR 17 extend through CUSE at 0, socket at 3"
	else
		cf_skip "no CUSE front in swtpm" loc-cuse-set-0 loc-cuse0-while-sock3
	fi
	cf_ioctl sock -l 0 >/dev/null 2>&1
	cf_ext17 rm
	cf_expect loc-rm-after-sock0 "$CF_E" 0x00000907 "PCR 17 extend through tpmrm$CF_N, socket back at 0"
	vt_same loc-pcr17 "$CF_P17" "$(cf_pcr rm 17)" "PCR 17 (the successful extends only)"
	vt_info "the socket front's own commands at locality 3 cannot be shown with tpm2-tools: the swtpm TCTI sets locality 0 at every start"
}

# ------------------------------------------------------------ cancel

# cf_keygen_bg FRONT: an RSA-2048 CreatePrimary through FRONT in the
# background (CF_KG_PID, output /tmp/cf-kg.out); each call a new template
# (nameAlg, attributes), so a key that happens to be quick is not repeated
CF_KG=0
cf_keygen_bg() {
	CF_KG=$((CF_KG + 1))
	case $((CF_KG % 4)) in
	0) _g=sha256 ;; 1) _g=sha384 ;; 2) _g=sha512 ;; 3) _g=sha1 ;;
	esac
	_a="restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth"
	[ $(((CF_KG / 4) % 2)) = 1 ] && _a="$_a|noda"
	[ $(((CF_KG / 8) % 2)) = 1 ] && _a="$_a|stclear"
	rm -f /tmp/cf-kg.ctx
	CF_KG_T0=$(vt_now)
	tpm2_createprimary -T "$(cf_tcti "$1")" -C o -G rsa2048 -g "$_g" -a "$_a" -c /tmp/cf-kg.ctx \
		>/tmp/cf-kg.out 2>&1 &
	CF_KG_PID=$!
}

# cf_keygen_wait: waits for it; CF_KG_ST its status, CF_KG_RC its TPM rc, CF_KG_S seconds
cf_keygen_wait() {
	wait "$CF_KG_PID"; CF_KG_ST=$?
	CF_KG_S=$(cf_dt "$CF_KG_T0" "$(vt_now)")
	CF_KG_RC=$(sed -n 's/.*ErrorCode (\(0x[0-9a-fA-F]*\)).*/\1/p' /tmp/cf-kg.out | tail -n 1)
}

# cf_cancels SIDE FIRST: while the keygen's client (CF_KG_PID) runs, a
# cancel on SIDE's control side FIRST seconds into it and then one every
# 0.1 s, each its own swtpm_ioctl in the background (one takes 0.1-0.2 s
# under TCG), so that some land while the command is in the TPM: a client
# that is alive need not have sent it yet, and libtpms looks at the cancel
# flag only while it searches for primes.  swtpm's ctrl socket takes one
# client at a time (a second connect fails), so for swtpm they go one
# after the other.  Sets CF_NC (cancels sent) and CF_CERR (a failed
# swtpm_ioctl's output, or "").
cf_cancels() {
	CF_NC=0 CF_CERR="" _cp=""
	rm -f /tmp/cf-cancel.*
	sleep "$2"
	while vt_alive "$CF_KG_PID" && [ $CF_NC -lt 40 ]; do
		CF_NC=$((CF_NC + 1))
		if cf_ours; then
			( cf_ioctl "$1" -C >"/tmp/cf-cancel.$CF_NC.out" 2>&1 || touch "/tmp/cf-cancel.$CF_NC.failed" ) &
			_cp="$_cp $!"
		else
			cf_ioctl "$1" -C >"/tmp/cf-cancel.$CF_NC.out" 2>&1 || touch "/tmp/cf-cancel.$CF_NC.failed"
		fi
		sleep 0.1
	done
	for _p in $_cp; do wait "$_p"; done
	for _f in /tmp/cf-cancel.*.failed; do
		[ -e "$_f" ] && CF_CERR=$(tr '\n' ' ' <"${_f%.failed}.out" | cut -c1-200) && break
	done
}

# cf_cancel_spares_rm CHECK SIDE: keygens through tpmrmN under SIDE's
# cancels (cf_cancels, from 0.1 s on) must all succeed.  A keygen counts
# with at least 2 cancels sent while it ran; 4 must count (the same cadence
# cancels about every other keygen of the front's own: cancel-*-own), in
# 10 attempts at most.
cf_cancel_spares_rm() {
	_try=0 _counted=0 _nc=0 _ks=""
	while [ $_try -lt 10 ] && [ $_counted -lt 4 ]; do
		_try=$((_try + 1))
		cf_keygen_bg rm
		cf_cancels "$2" 0.1
		cf_keygen_wait
		if [ -n "$CF_CERR" ]; then
			vt_fail "$1" "swtpm_ioctl -C on the $2 side failed: $CF_CERR"
			return 0
		elif [ "$CF_KG_RC" = 0x00000909 ]; then
			vt_fail "$1" "the $2 side's cancel cancelled the container's keygen (TPM_RC_CANCELED after ${CF_KG_S} s, $CF_NC cancels; attempt $_try)"
			return 0
		elif [ "$CF_KG_ST" != 0 ]; then
			vt_fail "$1" "the tpmrm$CF_N keygen failed (status $CF_KG_ST, rc ${CF_KG_RC:-none}): $(grep . /tmp/cf-kg.out | tail -n 1)"
			return 0
		elif [ $CF_NC -lt 2 ]; then
			vt_info "$1: attempt $_try: the keygen was over after ${CF_KG_S} s, $CF_NC cancel(s) sent: too few"
		else
			_counted=$((_counted + 1)) _nc=$((_nc + CF_NC)) _ks="$_ks ${CF_KG_S}"
		fi
	done
	if [ $_counted -ge 4 ]; then
		vt_pass "$1" "$_counted tpmrm$CF_N keygens succeeded (s:$_ks) through $_nc cancels on the $2 side in all ($_try attempts)"
	else
		vt_fail "$1" "in $_try attempts only $_counted keygens lasted through 2 cancels"
	fi
}

# cf_cancel_own CHECK FRONT FIRST: a keygen through FRONT (cuse or sock),
# cancelled by FRONT's own control side (cf_cancels, the first FIRST s into
# it): TPM_RC_CANCELED (0x909); up to 12 tries, a new template each
cf_cancel_own() {
	_try=0 _late=0
	while [ $_try -lt 12 ]; do
		_try=$((_try + 1))
		cf_keygen_bg "$2"
		cf_cancels "$2" "$3"
		cf_keygen_wait
		tpm2_flushcontext -T "$(cf_tcti "$2")" -t >/dev/null 2>&1
		if [ -n "$CF_CERR" ]; then
			vt_fail "$1" "swtpm_ioctl -C on the $2 side failed: $CF_CERR"
			return 0
		fi
		if [ "$CF_KG_RC" = 0x00000909 ]; then
			vt_pass "$1" "TPM_RC_CANCELED after ${CF_KG_S} s, $CF_NC cancel(s) from $3 s on; try $_try ($_late earlier keygens ended first)"
			return 0
		fi
		if [ "$CF_KG_ST" = 0 ]; then
			_late=$((_late + 1))
			vt_info "$1: try $_try: the keygen succeeded in ${CF_KG_S} s, $CF_NC cancel(s) sent while its client ran"
			continue
		fi
		vt_fail "$1" "the keygen failed otherwise (status $CF_KG_ST, rc ${CF_KG_RC:-none}): $(grep . /tmp/cf-kg.out | tail -n 1)"
		return 0
	done
	vt_fail "$1" "in $_try tries no keygen was cancelled ($_late succeeded)"
}

cf_cancel() {
	cf_cancel_spares_rm cancel-sock-spares-rm sock
	if cf_ours; then
		cf_cancel_spares_rm cancel-cuse-spares-rm cuse
		cf_cancel_own cancel-cuse-own cuse 0.3
		vt_run after-cancel-cuse tpm2_getrandom -T "$(cf_tcti cuse)" 8 --hex
		cf_cancel_own cancel-sock-own sock 0.1
		vt_run after-cancel-sock tpm2_getrandom -T "$(cf_tcti sock)" 8 --hex
	else
		cf_skip "no CUSE front in swtpm" cancel-cuse-spares-rm cancel-cuse-own after-cancel-cuse
		cf_skip "no data socket in swtpm chardev" cancel-sock-own after-cancel-sock
	fi
	vt_run after-cancel-rm tpm2_getrandom -T "$(cf_tcti rm)" 8 --hex
	vt_info "the vtpm-proxy front has no cancel path (the kernel's cancel op is empty)"
}

# ------------------------------------------------------------ established flag

cf_established() {
	if ! cf_ours; then
		# one control side: the flag as it tells it
		v0=$(cf_est sock)
		vt_run est-hash-sock cf_ioctl sock -h "combined-fronts hash data"
		v1=$(cf_est sock)
		vt_run est-reset-sock cf_ioctl sock -r 3
		v2=$(cf_est sock)
		vt_same est-ctrl "1 0" "$v1 $v2" "tpmEstablished after -h, after -r 3 (before: '$v0')"
		cf_skip "no CUSE front in swtpm: one control side only" est-agree est-both-1 est-both-0 \
			est-hash-cuse est-reset-cuse est-both-0-again
		return 0
	fi
	a=$(cf_est cuse) b=$(cf_est sock)
	if [ -n "$a" ] && [ "$a" = "$b" ]; then vt_pass est-agree "both say $a"
	else vt_fail est-agree "CUSE says '$a', the socket '$b'"; fi
	vt_run est-hash-cuse cf_ioctl cuse -h "combined-fronts hash data"
	vt_same est-both-1 "1 1" "$(cf_est cuse) $(cf_est sock)" "tpmEstablished on CUSE and socket after a hash through CUSE"
	vt_run est-reset-sock cf_ioctl sock -r 3
	vt_same est-both-0 "0 0" "$(cf_est cuse) $(cf_est sock)" "after -r 3 on the socket"
	vt_run est-hash-sock cf_ioctl sock -h "combined-fronts hash data"
	vt_run est-reset-cuse cf_ioctl cuse -r 3
	vt_same est-both-0-again "0 0" "$(cf_est cuse) $(cf_est sock)" "after a hash on the socket and -r 3 on CUSE"
	vt_skip est-ctrl "for swtpm's single control side (ours: est-agree, est-both-*)"
}

# ------------------------------------------------------------ stop

cf_stop() {
	vt_run stop-sock cf_ioctl sock --stop
	if cf_ours; then
		r=$(cf_raw cuse $CF_GETRAND)
		cf_expect stop-cuse-reply "$(cf_resp "$r")" $CF_NOT_RUNNING "GetRandom through CUSE ($r)"
		r=$(cf_raw sock $CF_GETRAND)
		cf_expect stop-sock-reply "$(cf_resp "$r")" $CF_NOT_RUNNING "GetRandom through the socket ($r)"
	else
		cf_skip "no CUSE front in swtpm" stop-cuse-reply
		cf_skip "no data socket in swtpm chardev" stop-sock-reply
	fi
	t=$(vt_now)
	r=$(cf_raw rm $CF_GETRAND)
	case $r in
	*"rc=0x00000101 resp=$CF_NOT_RUNNING") vt_pass stop-rm-reply "the not-running reply through tpmrm$CF_N in $(cf_dt "$t" "$(vt_now)") s: $r" ;;
	hang=*) vt_fail stop-rm-reply "no answer through tpmrm$CF_N within 20 s: $r" ;;
	*"read=ETIME"*|*"read=ECANCELED"*) vt_fail stop-rm-reply "the kernel gave up on the daemon: $r" ;;
	*"rc=0x00000000 "*) vt_fail stop-rm-reply "a stopped TPM answered success: $r" ;;
	*"rc=0x"*) vt_pass stop-rm-reply "an error response through tpmrm$CF_N in $(cf_dt "$t" "$(vt_now)") s: $r" ;;
	*) vt_fail stop-rm-reply "$r" ;;
	esac
	vt_run stop-init cf_ioctl sock -i
	# the resetter's Startup: ours through the socket; swtpm's chardev has
	# no other data channel than the container's
	if cf_ours; then r=$(cf_raw sock $CF_STARTUP); else r=$(cf_raw rm $CF_STARTUP); fi
	cf_expect stop-init-startup "$(cf_resp "$r")" $CF_OK10 "Startup(CLEAR) after STOP + INIT"
	vt_run stop-rm-after tpm2_getrandom -T "$(cf_tcti rm)" 8 --hex
}

# ------------------------------------------------------------ reset (INIT) and Startup

# cf_log_startups: lines of the daemon's log that mention Startup
cf_log_startups() {
	_c=$(grep -c 'Startup' /tmp/cf.log 2>/dev/null)
	echo "${_c:-0}"
}

cf_reset() {
	# (A) the resetter sends Startup at once; the container works at once
	if cf_ours; then
		vt_run reset-a-init cf_ioctl sock -i
		r=$(cf_raw sock $CF_STARTUP)
		cf_expect reset-a-startup "$(cf_resp "$r")" $CF_OK10 "the resetter's Startup(CLEAR) through the socket"
		r=$(cf_raw rm $CF_GETRAND)
		cf_expect reset-a-rm "$(echo "$r" | sed -n 's/.* rc=\(0x[0-9a-f]*\) .*/\1/p')" 0x00000000 "GetRandom through tpmrm$CF_N right after ($r)"
	else
		cf_skip "no data socket in swtpm chardev: no resetter's channel besides the container's" \
			reset-a-init reset-a-startup reset-a-rm
	fi
	# (B) the container first: TPM_RC_INITIALIZE; then the resetter's Startup
	vt_run reset-b-init cf_ioctl sock -i
	r=$(cf_raw rm $CF_GETRAND)
	cf_expect reset-b-rm-initialize "$(cf_resp "$r")" $CF_INITIALIZE "GetRandom through tpmrm$CF_N right after INIT ($r)"
	if cf_ours; then
		r=$(cf_raw sock $CF_STARTUP)
		cf_expect reset-b-startup "$(cf_resp "$r")" $CF_OK10 "the resetter's Startup(CLEAR) through the socket, within 10 s"
		vt_run reset-b-rm tpm2_getrandom -T "$(cf_tcti rm)" 8 --hex
	else
		cf_skip "no data socket in swtpm chardev" reset-b-startup reset-b-rm
	fi
	# (C) no Startup within 10 s: the daemon starts the TPM for the container
	n0=$(cf_log_startups)
	vt_run reset-c-init cf_ioctl sock -i
	t=$(vt_now)
	r=$(cf_raw rm $CF_GETRAND)
	cf_expect reset-c-rm-initialize "$(cf_resp "$r")" $CF_INITIALIZE "GetRandom through tpmrm$CF_N right after INIT ($r)"
	sleep 11
	r=$(cf_raw rm $CF_GETRAND)
	dt=$(cf_dt "$t" "$(vt_now)")
	case $r in
	*" rc=0x00000000 "*) vt_pass reset-c-rm "GetRandom through tpmrm$CF_N $dt s after INIT, no Startup sent: $r" ;;
	*"resp=$CF_INITIALIZE"*) vt_xfail_swtpm reset-c-rm "$dt s after INIT with no Startup the container still gets TPM_RC_INITIALIZE: nobody starts the TPM for it ($r)" ;;
	*) vt_fail reset-c-rm "GetRandom through tpmrm$CF_N $dt s after INIT: $r" ;;
	esac
	n1=$(cf_log_startups)
	if [ "$n1" -gt "$n0" ]; then
		vt_pass reset-c-log "$(grep 'Startup' /tmp/cf.log | tail -n 1 | cut -c1-200)"
	elif cf_ours; then
		vt_fail reset-c-log "no new line with 'Startup' in the daemon log ($n0 before, $n1 after): $(tail -n 2 /tmp/cf.log | tr '\n' '|' | cut -c1-200)"
	else
		vt_xfail_swtpm reset-c-log "no line with 'Startup' in swtpm's log (level 2)"
	fi
	if cf_ours; then
		r=$(cf_raw sock $CF_STARTUP)
		cf_expect reset-c-late-startup "$(cf_resp "$r")" $CF_INITIALIZE "the resetter's Startup(CLEAR) after the daemon's"
	else
		cf_skip "no data socket in swtpm chardev" reset-c-late-startup
		# the container has to start the TPM itself
		r=$(cf_raw rm $CF_STARTUP)
		vt_info "swtpm, tpmrm$CF_N: the container's own Startup(CLEAR) gives $(cf_resp "$r") ($r)"
	fi
	vt_run reset-c-rm-after tpm2_getrandom -T "$(cf_tcti rm)" 8 --hex
	# the NV index written before the INITs, from every front
	for f in rm cuse sock; do
		if ! cf_ours && [ $f != rm ]; then vt_skip "nv-after-init-$f" "swtpm: no such front"; continue; fi
		rm -f /tmp/cf-nvk.out
		cf_tool $f tpm2_nvread $CF_NV -C o -s 32 -o /tmp/cf-nvk.out
		vt_same "nv-after-init-$f" "$(cat /tmp/cf-nvk.in)" "$(cat /tmp/cf-nvk.out 2>/dev/null)" "NV $CF_NV through $f after the INITs"
	done
}

# ------------------------------------------------------------ state blobs under load

# cf_loop_start: the container extends PCR 16 through tpmrmN back to back
# until /tmp/cf-loop.stop exists; one line per command in /tmp/cf-loop.log:
# "ok" or the TPM's rc (or "fail: ...")
cf_loop_start() {
	rm -f /tmp/cf-loop.stop /tmp/cf-loop.log
	: >/tmp/cf-loop.log
	(
		while [ ! -e /tmp/cf-loop.stop ]; do
			if tpm2_pcrextend -T "device:/dev/tpmrm$CF_N" "16:sha256=$CF_D2" >/tmp/cf-loop.out 2>&1; then
				echo ok
			else
				_r=$(sed -n 's/.*ErrorCode (\(0x[0-9a-fA-F]*\)).*/\1/p' /tmp/cf-loop.out | tail -n 1)
				echo "${_r:-fail: $(grep . /tmp/cf-loop.out | tail -n 1)}"
			fi
		done >>/tmp/cf-loop.log
	) &
	CF_LOOP_PID=$!
}

cf_loop_stop() {
	touch /tmp/cf-loop.stop
	wait "$CF_LOOP_PID"
	CF_LOOP_OK=$(grep -c '^ok$' /tmp/cf-loop.log)
	CF_LOOP_ERR=$(grep -v '^ok$' /tmp/cf-loop.log | sort | uniq -c | sed 's/^ *//' | tr '\n' ';')
}

cf_blobs() {
	# the control side that takes the blobs: ours CUSE (the brief's), swtpm its ctrl
	side=cuse
	cf_ours || side=sock
	cf_loop_start
	sleep 1
	vt_run save-permanent-under-load cf_ioctl $side --save permanent /tmp/cf-perm.blob
	vt_run save-volatile-under-load cf_ioctl $side --save volatile /tmp/cf-vol.blob
	vt_run save-permanent-again cf_ioctl $side --save permanent /tmp/cf-perm2.blob
	sleep 1
	cf_loop_stop
	ps=$(wc -c </tmp/cf-perm.blob 2>/dev/null || echo 0)
	vs=$(wc -c </tmp/cf-vol.blob 2>/dev/null || echo 0)
	if [ "$ps" -gt 0 ] && [ "$vs" -gt 0 ]; then vt_pass blobs-under-load "permanent $ps bytes, volatile $vs bytes, through $side"
	else vt_fail blobs-under-load "permanent $ps bytes, volatile $vs bytes"; fi
	if [ -z "$CF_LOOP_ERR" ] && [ "$CF_LOOP_OK" -gt 0 ]; then
		vt_pass loop-under-save "$CF_LOOP_OK extends through tpmrm$CF_N, none failed, while the blobs were taken"
	else
		vt_fail loop-under-save "$CF_LOOP_OK ok; errors: $CF_LOOP_ERR"
	fi
	# STOP and INIT under the same loop: only defined errors, then it works on
	cf_loop_start
	sleep 1
	vt_run stop-under-load cf_ioctl $side --stop
	sleep 1
	vt_run init-under-load cf_ioctl $side -i
	if cf_ours; then r=$(cf_raw cuse $CF_STARTUP); else r=$(cf_raw rm $CF_STARTUP); fi
	vt_info "Startup(CLEAR) after the INIT under load: $r"
	sleep 1.5
	cf_loop_stop
	bad=$(grep -v -E '^(ok|0x00000101|0x00000100)$' /tmp/cf-loop.log | head -n 1)
	last=$(tail -n 1 /tmp/cf-loop.log)
	if [ -z "$bad" ] && [ "$last" = ok ] && [ "$CF_LOOP_OK" -gt 0 ]; then
		vt_pass stop-init-under-load "$CF_LOOP_OK ok; defined errors only: ${CF_LOOP_ERR:-none}; the last extend succeeded"
	else
		vt_fail stop-init-under-load "first other error: '$bad', last: '$last', $CF_LOOP_OK ok, all errors: $CF_LOOP_ERR"
	fi
	# the blob taken under load is a whole one: it loads, and the NV data is in it
	vt_run blob-load-stop cf_ioctl $side --stop
	vt_run blob-load cf_ioctl $side --load permanent /tmp/cf-perm.blob
	vt_run blob-load-init cf_ioctl $side -i
	if cf_ours; then r=$(cf_raw cuse $CF_STARTUP); else r=$(cf_raw rm $CF_STARTUP); fi
	cf_expect blob-load-startup "$(cf_resp "$r")" $CF_OK10 "Startup(CLEAR) on the loaded blob"
	rm -f /tmp/cf-nvk.out
	cf_tool rm tpm2_nvread $CF_NV -C o -s 32 -o /tmp/cf-nvk.out
	vt_same blob-load-nv "$(cat /tmp/cf-nvk.in)" "$(cat /tmp/cf-nvk.out 2>/dev/null)" "NV $CF_NV through tpmrm$CF_N after loading the blob"
}

# ------------------------------------------------------------ a container

cf_container() {
	# /tmp/cf-ns.sh runs inside: what it sees, then the tools
	cat >/tmp/cf-ns.sh <<'EOF'
echo "dev=$(ls -A /dev | tr '\n' ' ')"
echo "pid=$$"
echo "procs=$(ls /proc | grep -c '^[0-9]')"
echo "rand=$(tpm2_getrandom -T device:/dev/tpmrm0 16 --hex 2>/tmp/cf-ns.err)"
tpm2_pcrread -T device:/dev/tpmrm0 sha256:16 >/tmp/cf-ns.pcr 2>>/tmp/cf-ns.err
echo "pcrread=$?"
EOF
	vt_container "/dev/tpmrm$CF_N" tpmrm0 sh /tmp/cf-ns.sh >/tmp/cf-ns.out 2>&1
	rc=$?
	sed 's/^/    | /' /tmp/cf-ns.out
	if [ $rc -eq 125 ]; then
		vt_fail container-setup "unshare/mount failed: $(tr '\n' ' ' </tmp/cf-ns.out | cut -c1-200)"
		return 0
	fi
	dev=$(sed -n 's/^dev=//p' /tmp/cf-ns.out) pid=$(sed -n 's/^pid=//p' /tmp/cf-ns.out)
	procs=$(sed -n 's/^procs=//p' /tmp/cf-ns.out)
	if [ "$dev" = "tpmrm0 " ] && [ -n "$pid" ] && [ "$pid" -le 2 ] && [ -n "$procs" ] && [ "$procs" -le 5 ]; then
		vt_pass container-setup "new mount + PID namespace: /dev holds only tpmrm0 (tpmrm$CF_N), the shell is PID $pid, $procs processes in /proc"
	else
		vt_fail container-setup "/dev: '$dev', pid '$pid', $procs processes in /proc"
	fi
	rand=$(sed -n 's/^rand=//p' /tmp/cf-ns.out)
	if echo "$rand" | grep -qE '^[0-9a-f]{32}$'; then vt_pass container-getrandom "$rand"
	else vt_fail container-getrandom "got '$rand': $(tail -n 1 /tmp/cf-ns.err 2>/dev/null)"; fi
	inside=$(sed -n 's/^ *16 *: *0x\([0-9A-Fa-f]*\)$/\1/p' /tmp/cf-ns.pcr 2>/dev/null | tr 'A-F' 'a-f')
	# outside: through tpmrmN (and CUSE, for ours)
	outside=$(cf_pcr rm 16)
	if cf_ours; then outside="$outside/$(cf_pcr cuse 16)"; inside="$inside/$inside"; fi
	vt_same container-pcrread "$outside" "$inside" "PCR 16 inside the container (/outside through CUSE)"
}

# ------------------------------------------------------------ idle

# cf_cpu PID: utime + stime of PID in clock ticks
cf_cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

cf_idle() {
	# clients that hold the fronts open and do nothing
	if cf_ours; then
		( exec 5<>"/dev/$CF_CUSE" 6<>"/dev/tpmrm$CF_N"; sleep 13 ) &
	else
		( exec 6<>"/dev/tpmrm$CF_N"; sleep 13 ) &
	fi
	hold=$!
	sleep 1
	nthr=$(ls "/proc/$CF_PID/task" | wc -l)
	c0=$(cf_cpu "$CF_PID")
	t0=$(vt_now)
	sleep 10
	c1=$(cf_cpu "$CF_PID")
	dt=$(cf_dt "$t0" "$(vt_now)")
	wait $hold
	what="utime+stime $c0 -> $c1 ticks over $dt s ($nthr threads; open: $(cf_ours && echo "/dev/$CF_CUSE, ")/dev/tpmrm$CF_N; listening: $CF_CTRL$(cf_ours && echo ", $CF_SOCK"))"
	if [ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -le 1 ]; then vt_pass idle-cpu "$what"
	elif [ -n "$c0" ] && [ -n "$c1" ]; then vt_xfail_swtpm idle-cpu "$((c1 - c0)) ticks: $what"
	else vt_fail idle-cpu "no /proc/$CF_PID/stat: $what"; fi
}

# ------------------------------------------------------------ the run

vm_guest() {
	if [ -e /dev/tpm0 ] || [ -e /dev/tpmrm0 ]; then
		vt_fail no-other-tpm "a TPM exists before the daemon starts: $(ls /dev/tpm* | tr '\n' ' ')"
		return 0
	fi
	vt_pass no-other-tpm
	t0=$(vt_now)
	if ! cf_start; then
		vt_fail start "no 'New TPM device' line on stdout ('$VT_PROXY_LINE'): $(vt_proxy_why cf)"
		kill "$VT_PROXY_PID" 2>/dev/null
		return 0
	fi
	CF_PID=$VT_PROXY_PID CF_N=$VT_PROXY_N
	vt_pass start "$VT_PROXY_LINE after $(cf_dt "$t0" "$(vt_now)") s"
	cf_nodes || { kill "$CF_PID"; return 0; }
	fds=$(ls -l "/proc/$CF_PID/fd" 2>/dev/null | sed -n 's/.* -> //p' | tr '\n' ' ')
	if cf_ours; then
		case "$(cat /tmp/cf.pid 2>/dev/null) $fds" in
		"$CF_PID "*"[vtpms]"*) case $fds in
			*/dev/cuse*) vt_pass one-process "pid $CF_PID holds /dev/cuse and the [vtpms] fd; pid file says so" ;;
			*) vt_fail one-process "pid $CF_PID has no /dev/cuse fd: $fds" ;;
			esac ;;
		*) vt_fail one-process "pid file '$(cat /tmp/cf.pid 2>/dev/null)', pid $CF_PID, fds: $fds" ;;
		esac
	else
		vt_skip one-process "swtpm serves one front (plus its ctrl channel)"
	fi
	vt_info "fronts: $(cf_tcti rm), $(cf_ours && echo "$(cf_tcti cuse), $(cf_tcti sock), ")ctrl $CF_CTRL"

	# an NV index that must outlive every INIT
	printf 'kept across INIT and STOP 012345' >/tmp/cf-nvk.in	# 32 bytes
	vt_run nv-keep sh -c "tpm2_nvdefine -T device:/dev/tpmrm$CF_N $CF_NV -C o -s 32 -a 'ownerread|ownerwrite' &&
		tpm2_nvwrite -T device:/dev/tpmrm$CF_N $CF_NV -C o -i /tmp/cf-nvk.in"

	cf_cross
	cf_locality
	cf_cancel
	cf_established
	cf_stop
	cf_reset
	cf_blobs
	cf_container
	cf_idle

	vt_proxy_stop daemon-exit "$CF_PID" "$CF_N"
	if cf_ours; then
		if [ -e "/dev/$CF_CUSE" ]; then vt_fail cuse-node-gone "/dev/$CF_CUSE is still there"
		else vt_pass cuse-node-gone; fi
	fi
	left=$(ls "$CF_CTRL" "$CF_SOCK" 2>/dev/null | tr '\n' ' ')
	if [ -z "$left" ]; then vt_pass sockets-removed
	else vt_fail sockets-removed "left: $left"; fi
	vt_info "daemon log: $(grep -v '^ *$' /tmp/cf.log 2>/dev/null | tail -n 6 | tr '\n' '|' | cut -c1-600)"
	return 0
}
