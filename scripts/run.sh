#!/bin/sh
# `make run`: one TPM 2.0 in the foreground, state under the checkout,
# reachable by tpm2-tools (TCTI swtpm:) and swtpm_ioctl.  Ctrl-C stops it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
run="$top/run"
state="$run/tpm2-state"
data="$run/tpm.sock"

mkdir -p "$state"
cat <<EOT
vtpm-bridge: a TPM 2.0 with its state in $state

In another shell:
  tpm2_getrandom -T swtpm:path=$data 16 --hex
  tpm2_pcrread -T swtpm:path=$data sha256:0,1
  swtpm_ioctl --unix $data.ctrl -c          (capabilities; see swtpm_ioctl --help)

Stop it with Ctrl-C (the state stays; the next make run continues it).
EOT
exec "$top/$BUILD/vtpm-bridge" socket --tpm2 \
	--tpmstate "dir=$state,mode=0600" \
	--server "type=unixio,path=$data,mode=0600" \
	--ctrl "type=unixio,path=$data.ctrl,mode=0600" \
	--flags not-need-init,startup-clear \
	--log level=1
