# Guest helpers (busybox ash), /vm/guest.sh in the initramfs.  /init and
# every scenario's vm_guest use them.
#
# Protocol: one line per event, "VMTEST: <WORD> <name>[ - <text>]", WORD one
# of BOOTED PASS FAIL SKIP INFO WAIT DONE.  Each line goes to the console
# (ttyS0, among kernel messages) and to ttyS1 (fd 9), which the host reads
# for results.  "WAIT <tag>" asks the host for an event (e.g. a migration);
# the host answers with one line on ttyS1.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin

vt_now() { read -r _u _ < /proc/uptime; echo "$_u"; }

vt_emit() {
	echo "VMTEST: $*"
	if [ -e /proc/self/fd/9 ]; then echo "VMTEST: $*" >&9; fi
}
vt_pass() { vt_emit "PASS $1${2:+ - $2}"; }
vt_fail() { vt_emit "FAIL $1 - ${2:-failed}"; }
vt_skip() { vt_emit "SKIP $1 - ${2:?a SKIP needs its reason}"; }
vt_info() { vt_emit "INFO $*"; }

# vt_run NAME CMD...: run CMD; PASS or FAIL NAME by its exit status.  The
# output is echoed indented on the console and kept in $VT_OUT.
vt_run() {
	_name=$1; shift
	VT_OUT=/tmp/vt-$(echo "$_name" | tr -c 'A-Za-z0-9_.\n-' '_').out
	"$@" > "$VT_OUT" 2>&1
	_rc=$?
	sed 's/^/    | /' "$VT_OUT"
	if [ $_rc -eq 0 ]; then vt_pass "$_name"
	else vt_fail "$_name" "rc=$_rc: $(grep -v '^[[:space:]]*$' "$VT_OUT" | tail -n 1)"; fi
	return $_rc
}

# vt_same NAME EXPECTED GOT [what]: PASS if both strings are equal and not empty
vt_same() {
	if [ -n "$2" ] && [ "$2" = "$3" ]; then vt_pass "$1"
	else vt_fail "$1" "${4:-value} is '$3', expected '$2'"; fi
}

# vt_wait_path PATH [SECONDS]: wait until PATH exists
vt_wait_path() {
	_i=0
	while [ ! -e "$1" ]; do
		_i=$((_i + 1))
		[ $_i -gt $(( ${2:-10} * 10 )) ] && return 1
		sleep 0.1
	done
}

# vt_host_wait TAG [SECONDS]: tell the host we wait for TAG and read its
# one-line answer (printed on stdout).  Fails on timeout (default 600 s).
vt_host_wait() {
	vt_emit "WAIT $1" >&2     # stdout is the answer
	read -r -t "${2:-600}" _answer <&9 || return 1
	echo "$_answer"
}

# vt_pcr BANK:INDEX: the PCR's value as lower-case hex, nothing on error
vt_pcr() {
	tpm2_pcrread "$1" 2>/dev/null |
		sed -n 's/^ *[0-9]* *: *0x\([0-9A-Fa-f]*\)$/\1/p' | tr 'A-F' 'a-f'
}

# vt_tool_results FILE: a guest tool's "PASS|FAIL|SKIP name - text" and
# "INFO text" lines as results ("INFO start ..." progress lines are not);
# returns 1 if there was no result
vt_tool_results() {
	_n=0
	while IFS= read -r _l; do
		case $_l in
		"PASS "* | "FAIL "* | "SKIP "*)
			_w=${_l%% *} _r=${_l#* }
			_t=$(echo "$_r" | sed -n 's/^[^ ]* - //p')
			case $_w in
			PASS) vt_pass "${_r%% *}" "$_t" ;;
			FAIL) vt_fail "${_r%% *}" "$_t" ;;
			SKIP) vt_skip "${_r%% *}" "${_t:-no reason given}" ;;
			esac
			_n=$((_n + 1)) ;;
		"INFO start "*) ;;
		"INFO "*) vt_info "${_l#INFO }" ;;
		esac
	done <"$1"
	[ $_n -gt 0 ]
}

# vt_asan_daemon: in a scenario's variant "asan", VT_DAEMON_BIN becomes the
# ASan+UBSan build the host staged (vm_stage_asan), its reports going to
# /tmp/asan.* and /tmp/ubsan.*; quarantine_size_mb=0 reuses freed memory at
# once, so RSS checks hold under ASan too
vt_asan_daemon() {
	[ "$VM_VARIANT" = asan ] || return 0
	VT_DAEMON_BIN=/usr/bin/tpm-daemon-asan
	export ASAN_OPTIONS="log_path=/tmp/asan:detect_leaks=1:quarantine_size_mb=0"
	export UBSAN_OPTIONS="log_path=/tmp/ubsan:print_stacktrace=1"
}

# vt_asan_report: in variant "asan", after the daemon exited: PASS or FAIL
# "sanitizer" by its reports (leaks at exit included)
vt_asan_report() {
	[ "$VM_VARIANT" = asan ] || return 0
	_rep=$(ls /tmp/asan.* /tmp/ubsan.* 2>/dev/null)
	if [ -z "$_rep" ]; then vt_pass sanitizer "no ASan, LSan or UBSan report"; return 0; fi
	for _f in $_rep; do sed 's/^/    | /' "$_f" | head -n 40; done
	# shellcheck disable=SC2086  # the list of report files
	vt_fail sanitizer "$(grep -h -m1 -E 'ERROR|runtime error' $_rep | head -n 1 | cut -c1-200)"
}
