# shellcheck shell=sh disable=SC2034  # VM_* are read by tests/vm/lib/host.sh
# The guest of the libvirt suite, in the format of a tests/vm scenario:
# tests/libvirt/run.sh builds its initramfs with tests/vm/lib/host.sh
# (vm_initramfs_build: busybox, tests/vm/lib/guest-init as /init,
# tests/vm/lib/guest.sh, the binaries below with their libraries), and
# /init runs vm_guest.  libvirt gives the guest a tpm-crb device (the
# Debian kernel's tpm_crb driver is built in), ttyS0 goes to a file and
# ttyS1 is the host's two-way channel (a FIFO pair, <serial type='pipe'>).
#
# One domain boots twice; the guest asks the host which boot it is
# ("WAIT phase"; the answer is "boot1 HEX" or "boot2 HEX", HEX being the
# 32 bytes the NV index holds):
#   boot1  tpm2-tools work, the EK and platform certificates that
#          swtpm_setup wrote are there (the EK certificate's key is the EK's),
#          an NV index is defined and written with HEX; then "WAIT destroy":
#          the host runs `virsh destroy` (no answer ever comes) and
#          `virsh start`
#   boot2  the NV index still holds HEX; PCR16 is extended; "WAIT save": the
#          host runs `virsh save` and `virsh restore`, then answers "go";
#          the NV index, PCR16 (volatile state) and the TPM still work
# then /init reports DONE and powers off.

VM_DESC="libvirt <tpm model='tpm-crb'><backend type='emulator'>: tpm2-tools, EK cert, NV across destroy/start and save/restore"
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_* /usr/bin/openssl"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"
VM_MODULES=""
LV_NV=0x01500016

vm_stage() {
	# /vm/env, which tests/vm/run.sh otherwise adds per job
	printf "VT_JOB='libvirt'\nVM_VARIANT=''\nVT_DAEMON=''\n" >"$1/vm/env"
	mkdir -p "$1/usr/lib/ssl"
	cp /etc/ssl/openssl.cnf "$1/usr/lib/ssl/openssl.cnf"
}

# lv_nvhex INDEX: the NV index's contents as lower-case hex, one line
lv_nvhex() {
	tpm2_nvread -C o "$1" 2>/tmp/nvread.err | xxd -p | tr -d '\n'
}

vm_guest() {
	export TPM2TOOLS_TCTI=device:/dev/tpmrm0
	phase=$(vt_host_wait phase 120) || { vt_fail phase "no answer from the host in 120 s"; return 0; }
	# shellcheck disable=SC2086  # two words
	set -- $phase
	b=$1 hex=$2
	vt_info "phase $b"
	case $b in boot1|boot2) ;; *) vt_fail phase "unexpected answer '$phase'"; return 0 ;; esac

	if vt_wait_path /dev/tpmrm0 10 && [ -c /dev/tpm0 ]; then
		vt_pass "$b-tpm-nodes"
	else
		vt_fail "$b-tpm-nodes" "no /dev/tpm0 + /dev/tpmrm0 (have: $(echo /dev/tpm*)); $(dmesg | grep -i tpm | tail -n 2 | tr '\n' ' ')"
		vt_host_wait "$([ "$b" = boot1 ] && echo destroy || echo save)" 300 >/dev/null
		return 0
	fi
	drv=$(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")
	ver=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)
	vt_same "$b-tpm-driver" "tpm_crb 2" "$drv $ver" "driver and TPM version"
	r1=$(tpm2_getrandom 16 --hex 2>/tmp/err)
	r2=$(TPM2TOOLS_TCTI=device:/dev/tpm0 tpm2_getrandom 16 --hex 2>>/tmp/err)
	if echo "$r1" | grep -qE '^[0-9a-f]{32}$' && echo "$r2" | grep -qE '^[0-9a-f]{32}$' && [ "$r1" != "$r2" ]; then
		vt_pass "$b-getrandom"
	else
		vt_fail "$b-getrandom" "got '$r1' and '$r2': $(tail -n 1 /tmp/err)"
	fi

	if [ "$b" = boot1 ]; then
		vt_run pcrread tpm2_pcrread sha256:0,1,2,3,4,5,6,7,16
		# swtpm_setup --create-ek-cert (swtpm_localca) wrote the RSA EK
		# certificate into NV index 0x01c00002
		if vt_run ek-cert-nv tpm2_nvreadpublic 0x01c00002 &&
				tpm2_nvread -C o 0x01c00002 -o /tmp/ek.crt 2>/tmp/err &&
				openssl x509 -inform DER -in /tmp/ek.crt -noout -issuer -subject >/tmp/x509 2>>/tmp/err; then
			vt_pass ek-cert "$(wc -c </tmp/ek.crt) bytes, $(grep -m1 issuer /tmp/x509)"
			# the certificate certifies this TPM's EK: the same RSA modulus
			if tpm2_createek -c /tmp/ek.ctx -G rsa -u /tmp/ek.pem -f pem >/tmp/err 2>&1 &&
					m1=$(openssl rsa -pubin -in /tmp/ek.pem -noout -modulus 2>>/tmp/err) &&
					m2=$(openssl x509 -inform DER -in /tmp/ek.crt -noout -modulus 2>>/tmp/err) &&
					[ -n "$m1" ] && [ "$m1" = "$m2" ]; then
				vt_pass ek-cert-key "the certificate's key is the EK (tpm2_createek -G rsa)"
			else
				vt_fail ek-cert-key "EK ${m1:-?} vs certificate ${m2:-?}: $(tail -n 1 /tmp/err)"
			fi
		else
			vt_fail ek-cert "no readable X.509 certificate at 0x01c00002: $(tail -n 1 /tmp/err)"
		fi
		vt_run ecc-ek-cert-nv tpm2_nvreadpublic 0x01c00016
		vt_run platform-cert-nv tpm2_nvreadpublic 0x01c08000
		if vt_run nv-define tpm2_nvdefine $LV_NV -C o -s 32 -a "ownerread|ownerwrite"; then
			echo "$hex" | xxd -r -p >/tmp/nv.bin
			vt_run nv-write tpm2_nvwrite $LV_NV -C o -i /tmp/nv.bin
			vt_same nv-read "$hex" "$(lv_nvhex $LV_NV)" "NV contents"
		fi
		# the host destroys the domain now: an answer is a failure
		if ans=$(vt_host_wait destroy 300); then
			vt_fail destroy-answered "the host answered '$ans' instead of destroying the domain"
		fi
		return 0
	fi

	# boot2, after virsh destroy + start
	vt_same nv-kept-destroy "$hex" "$(lv_nvhex $LV_NV)" "NV contents after destroy/start ($(tail -n 1 /tmp/nvread.err))"
	dig=$(echo "libvirt save/restore" | sha256sum | cut -d' ' -f1)
	want=$(vt_extend 0000000000000000000000000000000000000000000000000000000000000000 "$dig")
	tpm2_pcrextend "16:sha256=$dig" >/tmp/err 2>&1
	pcr=$(vt_pcr sha256:16)
	vt_same pcr16-extend "$want" "$pcr" "PCR16 ($(tail -n 1 /tmp/err))"
	if ! ans=$(vt_host_wait save 300); then
		vt_fail resumed "no answer from the host 300 s after WAIT save"
		return 0
	fi
	vt_same resumed go "$ans" "the host's answer after restore"
	vt_same nv-kept-restore "$hex" "$(lv_nvhex $LV_NV)" "NV contents after save/restore ($(tail -n 1 /tmp/nvread.err))"
	vt_same pcr16-kept-restore "$want" "$(vt_pcr sha256:16)" "PCR16 after save/restore"
	r3=$(tpm2_getrandom 16 --hex 2>/tmp/err)
	if echo "$r3" | grep -qE '^[0-9a-f]{32}$'; then vt_pass getrandom-restore
	else vt_fail getrandom-restore "got '$r3': $(tail -n 1 /tmp/err)"; fi
	vt_run nv-undefine tpm2_nvundefine $LV_NV -C o
}
