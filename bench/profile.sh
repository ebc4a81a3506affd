#!/usr/bin/env bash
# Where the time of one benchmark job goes, on Basalt: a local cluster (3
# monitors, 3 OSDs of 4G, the 1 GiB volume `bench`, written first), the job
# of bench/run.sh through basalt-nbd (fio's nbd engine) or the native
# client (bench/volume_load), and meanwhile
#   - the CPU seconds per I/O of every process (each OSD, each monitor,
#     basalt-nbd, the load generator), from /proc and getrusage;
#   - perf record (cpu-clock, call graphs) of every Basalt process and the
#     load generator, and the top functions per process;
#   - vmstat: how busy the machine's CPUs were, waiting for I/O, or stolen
#     by the host (a VM's).
#
#   bench/profile.sh [--job JOB] [--front nbd|native] [--runtime S]
#                    [--ms-mode crc|secure] [--osd-size SIZE] [--dir DIR]
#                    [--build DIR]
#
# JOB is one of bench/run.sh's (default 4k-randwrite-qd32); default front
# nbd, runtime 15 s, the cluster's links in ms_mode crc (secure: inside
# TLS). Output in bench/results/profile-JOB-FRONT[-secure]-TIME/:
# cpu.md (µs of CPU and context switches per I/O, per process: the switches
# count how often its threads slept and woke; io-wq workers that exited are
# not counted), perf.txt (perf report, by
# process then function), perf.data and the job's JSON. Everything it
# starts it stops, by PID. Needs root and perf (linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
job=4k-randwrite-qd32 front=nbd runtime=15 ms_mode=crc osd_size=4G dir=/var/tmp build=
while [ $# -gt 0 ]; do
	case "$1" in
	--job) job=$2; shift 2 ;;
	--front) front=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--ms-mode) ms_mode=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "profile.sh: unknown option $1" >&2; usage ;;
	esac
done
IFS=- read -r bs rw qd <<<"$job"
qd=${qd#qd}
case $rw in randwrite|randread|write|read) ;; *) echo "profile.sh: unknown job $job" >&2; exit 2 ;; esac
case $front in nbd|native) ;; *) echo "profile.sh: --front takes nbd or native" >&2; exit 2 ;; esac
case $ms_mode in crc|secure) ;; *) echo "profile.sh: --ms-mode takes crc or secure" >&2; exit 2 ;; esac
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
. bench/lib.sh
bench_build
tag=$front
[ "$ms_mode" = crc ] || tag=$front-$ms_mode
out=bench/results/profile-$job-$tag-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$dir/basalt-profile.XXXXXX")
nbd_pid= perf_pid= vmstat_pid=
stop() {
	[ -n "$vmstat_pid" ] && kill "$vmstat_pid" 2>/dev/null && wait "$vmstat_pid" 2>/dev/null
	[ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
	[ -n "$nbd_pid" ] && kill "$nbd_pid" 2>/dev/null && wait "$nbd_pid" 2>/dev/null
	scripts/cluster.sh down --dir "$work/basalt" --purge >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap stop EXIT
trap 'echo "profile.sh: failed at line $LINENO" >&2' ERR

echo "== Basalt: 3 monitors, 3 OSDs of $osd_size; 1 GiB written" >&2
bench_cluster "$work/basalt" "$osd_size"
[ "$ms_mode" = crc ] || bench_ms_mode "$work/basalt" "$ms_mode"
bench_nbd "$work/basalt-nbd.log"
fio --name=prefill --ioengine=nbd --uri="nbd://127.0.0.1:$nbd_port/bench" --rw=write --bs=1M \
	--iodepth=4 --size=1G --output-format=json --output="$work/prefill.json" >/dev/null

# The job, its generator started first and stopped (SIGSTOP) so that perf
# can follow it from the first I/O.
if [ "$front" = nbd ]; then
	cmd=(fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:$nbd_port/bench" --time_based
		--output-format=json)
else
	cmd=("$build/bench/volume_load" -c "$BASALT_CONF" --keyring "$work/basalt/keyring" --volume bench)
fi
cmd+=(--rw="$rw" --bs="${bs^^}" --iodepth="$qd" --size=1G --runtime="$runtime" --ramp_time=2
	--output="$out/job.json")
python3 -c 'import os, resource, signal, sys
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    os.execvp(sys.argv[2], sys.argv[2:])
open(sys.argv[1] + ".pid", "w").write(str(pid))
_, status = os.waitpid(pid, 0)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(u.ru_utime + u.ru_stime))
open(sys.argv[1] + ".switches", "w").write(str(u.ru_nvcsw + u.ru_nivcsw))
sys.exit(os.waitstatus_to_exitcode(status))' "$work/load-cpu" "${cmd[@]}" >/dev/null &
runner=$!
for _ in $(seq 50); do [ -s "$work/load-cpu.pid" ] && break; sleep 0.1; done
load_pid=$(cat "$work/load-cpu.pid")
{ cat "$work/basalt/pids"; echo "basalt-nbd $nbd_pid"; } >"$work/procs"
declare -A c0 w0
while read -r name p; do c0[$name]=$(cpu_seconds - "$p") w0[$name]=$(switches - "$p"); done <"$work/procs"
perf record -q -F 1999 -e cpu-clock -g -o "$out/perf.data" \
	-p "$(awk '{print $2}' "$work/procs" | paste -sd, -),$load_pid" >"$work/perf.log" 2>&1 &
perf_pid=$!
vmstat -n 1 >"$work/vmstat" &
vmstat_pid=$!
sleep 1
echo "== $job through $front, $runtime s, under perf" >&2
kill -CONT "$load_pid"
wait "$runner" || { echo "profile.sh: the job failed" >&2; exit 1; }
kill "$vmstat_pid"
wait "$vmstat_pid" 2>/dev/null || true
vmstat_pid=
kill -INT "$perf_pid"
wait "$perf_pid" || true
perf_pid=

python3 - "$out" "$rw" "$work/load-cpu" "$runtime" "$front" "$work/vmstat" <<PY >"$out/cpu.md"
import json, sys
out, rw, load_cpu, runtime, front, vmstat = sys.argv[1:]
sys.path.insert(0, "bench")
from nbd_table import side
iops, mbs, mean, p99, secs = side(f"{out}/job.json", rw)
ops = iops * (secs + 2)  # the ramp ran at about the same rate
procs = {$(while read -r name p; do echo "\"$name\": $(cpu_seconds - "$p") - ${c0[$name]},"; done <"$work/procs")}
sw = {$(while read -r name p; do echo "\"$name\": $(switches - "$p") - ${w0[$name]},"; done <"$work/procs")}
load = "fio (nbd client)" if front == "nbd" else "volume_load (libbasalt)"
procs[load] = float(open(load_cpu).read())
sw[load] = int(open(load_cpu + ".switches").read())
print(f"{rw} through {front}: {iops:.0f} IOPS, {mbs:.1f} MB/s, mean {mean:.0f} µs, p99 {p99:.0f} µs")
print()
print("| process | CPU s | µs per I/O | context switches per I/O |")
print("|---|---:|---:|---:|")
for name, s in procs.items():
    print(f"| {name} | {s:.2f} | {s * 1e6 / ops:.0f} | {sw[name] / ops:.2f} |")
total = sum(procs.values())
print(f"| all | {total:.2f} | {total * 1e6 / ops:.0f} | {sum(sw.values()) / ops:.2f} |")
# vmstat's columns us sy id wa st: the machine's CPUs, averaged over the
# job (the first line is the average since boot: skipped).
cols = [l.split() for l in open(vmstat) if l.split() and l.split()[0].isdigit()][1:]
if cols:
    avg = [sum(int(c[i]) for c in cols) / len(cols) for i in range(12, 17)]
    print()
    print("The machine's CPUs during the job (vmstat, %): user {:.0f}, system {:.0f}, "
          "idle {:.0f}, waiting for I/O {:.0f}, stolen by the host {:.0f}".format(*avg))
PY
{
	perf report -i "$out/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null
	perf report -i "$out/perf.data" --no-children --sort comm,sym --percent-limit 0.5 --stdio \
		-g none 2>/dev/null
} | grep -v '^$' | grep -v '^# [A-Z(]' >"$out/perf.txt" || true
cat "$out/cpu.md"
echo
head -70 "$out/perf.txt"
echo "results in $out" >&2
