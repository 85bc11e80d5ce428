#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# A fuzz campaign: builds the libFuzzer targets, then runs them one at a
# time under nice -n 19, each from its seeds (tests/fuzz/seeds/NAME, read
# only) and a corpus kept between runs outside the tree, rotating through a
# plan of TARGET:SECONDS slots until the plan or the deadline is done.
#
#   tests/fuzz/campaign.sh [--build DIR] [--dir DIR] [--until HH:MM] [--rounds N] TARGET:SECONDS...
#   tests/fuzz/campaign.sh [--dir DIR] --report
#
# --dir (default /var/tmp/vtpm-fuzz) holds NAME/ (the corpus), crashes/NAME/
# (libFuzzer's artifacts), logs/ and results.tsv, one line per run.  Per
# run it prints seconds, executions (libFuzzer's final stats), coverage
# (cov: and ft: of the last status line), the corpus's size, and crashes
# (the artifacts the run left).  --until stops before a slot would end
# past HH:MM (UTC), shortening the last; --rounds repeats the plan (default
# 1, or as often as fits with --until).  --report sums results.tsv per
# target.  One run at a time, on purpose: this machine is shared.
set -eu

build=build
dir=/var/tmp/vtpm-fuzz
until=
rounds=
report=false
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--until) until=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--report) report=true; shift ;;
	-h|--help) sed -n '4,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "campaign.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
results=$dir/results.tsv

summary() {
	awk -F'\t' '
		{ n[$2]++; s[$2] += $3; e[$2] += $4; if ($5 > cov[$2]) cov[$2] = $5; if ($6 > ft[$2]) ft[$2] = $6;
		  corp[$2] = $7; c[$2] += $9; ts += $3; te += $4; tc += $9 }
		END {
			printf "%-16s %5s %9s %13s %6s %6s %7s %7s\n", "target", "runs", "seconds", "executions",
			       "cov", "ft", "corpus", "crashes"
			for (t in n)
				printf "%-16s %5d %9d %13d %6d %6d %7d %7d\n", t, n[t], s[t], e[t], cov[t], ft[t], corp[t], c[t]
			printf "%-16s %5s %9d %13d %6s %6s %7s %7d\n", "total", "", ts, te, "", "", "", tc
		}' "$@"
}

if $report; then
	[ -s "$results" ] || { echo "campaign.sh: no results in $results" >&2; exit 1; }
	summary "$results"
	exit 0
fi
[ $# -gt 0 ] || { echo "usage: campaign.sh [--build DIR] [--dir DIR] [--until HH:MM] [--rounds N] TARGET:SECONDS..." >&2; exit 2; }

cd "$(dirname "$0")/../.."
# Others edit the tree meanwhile: a build broken mid-edit is retried for up to 10 minutes.
tries=0
until nice -n 19 make -s BUILD="$build" fuzz-build; do
	tries=$((tries + 1))
	[ "$tries" -lt 10 ] || { echo "campaign.sh: the fuzz targets do not build" >&2; exit 1; }
	echo "campaign.sh: build failed, retrying in 60 s" >&2
	sleep 60
done
mkdir -p "$dir/logs"
deadline=
[ -z "$until" ] || deadline=$(date -u -d "$until" +%s)
[ -n "$rounds" ] || { [ -n "$deadline" ] && rounds=1000000 || rounds=1; }
this_run=$(mktemp)
trap 'rm -f "$this_run"' EXIT

count() {
	find "$1" -type f | wc -l
}

# One slot: prints and records its line; returns 1 when the deadline leaves no time.
run_slot() {
	name=$1 seconds=$2
	bin=$build/fuzz/$name
	[ -x "$bin" ] || { echo "campaign.sh: no target $bin" >&2; exit 2; }
	if [ -n "$deadline" ]; then
		left=$((deadline - $(date -u +%s)))
		[ "$left" -ge 30 ] || return 1
		[ "$seconds" -le "$left" ] || seconds=$left
	fi
	mkdir -p "$dir/$name" "$dir/crashes/$name"
	log=$dir/logs/$name-$(date -u +%Y%m%dT%H%M%S).log
	before=$(count "$dir/crashes/$name")
	touch "$dir/logs/.slot-start"
	start=$(date +%s)
	seeds=
	[ ! -d "tests/fuzz/seeds/$name" ] || seeds=tests/fuzz/seeds/$name
	# A crash ends the run early (rc != 0); the artifact is counted below.  The
	# targets' own messages (fuzz_linear logs ~8 MB/s) are dropped: -close_fd_mask=2
	# keeps libFuzzer's lines and the sanitizers' reports.
	nice -n 19 "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 -close_fd_mask=2 \
		-artifact_prefix="$dir/crashes/$name/" "$dir/$name" ${seeds:+"$seeds"} >"$log" 2>&1 || true
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corpus=$(count "$dir/$name")
	kib=$(du -sk "$dir/$name" | cut -f1)
	crashes=$(($(count "$dir/crashes/$name") - before))
	line=$(printf '%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s' "$(date -u +%FT%TZ)" "$name" "$took" \
		"${execs:-0}" "${cov:-0}" "${ft:-0}" "$corpus" "$kib" "$crashes" "$log")
	echo "$line" >>"$results"
	echo "$line" >>"$this_run"
	printf '%-16s %5d s %11d runs  cov %5d  ft %6d  corpus %6d files (%d KiB)  crashes %d\n' "$name" "$took" \
		"${execs:-0}" "${cov:-0}" "${ft:-0}" "$corpus" "$kib" "$crashes"
	[ "$crashes" -eq 0 ] || find "$dir/crashes/$name" -type f -newer "$dir/logs/.slot-start" | sed 's/^/    /'
}

round=0
while [ "$round" -lt "$rounds" ]; do
	round=$((round + 1))
	for slot in "$@"; do
		run_slot "${slot%%:*}" "${slot#*:}" || break 2
	done
done
echo "--- this campaign"
summary "$this_run"
