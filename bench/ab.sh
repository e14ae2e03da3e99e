#!/usr/bin/env bash
# Compares two builds of a benchmark: runs OLD and NEW in turn, PAIRS times, pinned to one CPU,
# takes one figure from each run's output and prints each pair, the median of NEW/OLD and in how
# many pairs NEW was ahead.
#
#   bench/ab.sh [-n PAIRS] [-c CPU] -m AWK OLD NEW [ARGS...]
#
#   -n PAIRS  pairs of runs (default 6)
#   -c CPU    the CPU both run on (default 0), by taskset
#   -m AWK    an awk program that prints the figure (one number) from a run's output, e.g.
#             '$1=="ustack" && $2==1000000 {print $7}' for bench_scaling's new connections/s at 1M
#   OLD NEW   the two binaries; ARGS are given to both
#
# Why pinned, and why in turn: on this project's 2-vCPU VM each vCPU's speed changes by up to
# 40% from one minute to the next with no steal time reported (the host's other load), and the
# two vCPUs do not change together: the same binary gave 1.14 M and 0.82 M new connections/s
# at 10k open on cpu0 and cpu1 in runs a few seconds apart.  A process the scheduler places on
# either vCPU therefore measures the vCPU as much as the code; pinned and alternated, each pair
# shares one vCPU and (mostly) one spell of it, and the median pair ratio discards the pair a
# change of spell fell inside.  Higher is better for the figure; for a time, read the ratio
# the other way round.
set -euo pipefail

pairs=6
cpu=0
prog=
usage() {
	echo "usage: bench/ab.sh [-n PAIRS] [-c CPU] -m AWK OLD NEW [ARGS...]" >&2
	exit 2
}
while getopts "n:c:m:" o; do
	case $o in
	n) pairs=$OPTARG ;;
	c) cpu=$OPTARG ;;
	m) prog=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ] || [ -z "$prog" ]; then usage; fi
case $pairs in '' | *[!0-9]*) pairs=x ;; *) pairs=$((10#$pairs)) ;; esac # 08 is eight, not octal
case $pairs in x | 0) echo "bench/ab.sh: -n: a number of pairs, at least 1" >&2; exit 2 ;; esac
case $cpu in '' | *[!0-9]*) echo "bench/ab.sh: -c: a CPU number: '$cpu'" >&2; exit 2 ;; esac
old=$1 new=$2
shift 2
for b in "$old" "$new"; do
	[ -x "$b" ] || { echo "bench/ab.sh: not an executable: $b" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "bench/ab.sh: taskset (util-linux) is needed" >&2; exit 2; }

# one run of binary $1: the figure, or a message naming what failed
figure() {
	local out v
	if ! out=$(taskset -c "$cpu" "$1" "${@:2}"); then
		echo "bench/ab.sh: $1 failed" >&2
		return 1
	fi
	v=$(printf '%s\n' "$out" | awk "$prog" | head -n 1)
	# a decimal number, perhaps with an exponent: anything else is a -m that missed
	if ! printf '%s\n' "$v" | grep -Eqx '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?'; then
		echo "bench/ab.sh: -m found no number in $1's output" >&2
		return 1
	fi
	echo "$v"
}

ratios=()
ahead=0
printf '%6s %14s %14s %8s\n' pair old new new/old
for ((i = 1; i <= pairs; i++)); do
	a=$(figure "$old" "$@")
	b=$(figure "$new" "$@")
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 == 0) exit 1; printf "%.4f", b / a }') ||
		{ echo "bench/ab.sh: the old build's figure is 0" >&2; exit 1; }
	ratios+=("$r")
	awk -v r="$r" 'BEGIN { exit !(r > 1) }' && ahead=$((ahead + 1))
	printf '%6d %14s %14s %8s\n' "$i" "$a" "$b" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "median new/old $median; new ahead in $ahead of $pairs pairs (cpu $cpu)"
