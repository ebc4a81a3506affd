#!/usr/bin/env bash
# Backups to S3 (`basalt backup`) beside the AWS CLI, on this machine and
# in one run: a Basalt local cluster (3 monitors, 3 OSDs on files, pool
# size 3) and a real S3 server (tests/integration/rgw_lib.sh: radosgw over
# one memstore ceph-osd). A SIZE volume gets DATA bytes written through
# basalt-nbd in 8 pieces spread over it, alternately random (incompressible)
# and log-like text (zstd shrinks it about 3x), no two 4 MiB chunks
# alike; the same DATA bytes sit in a local file for `aws s3 cp`.
#   full        basalt backup create of a snapshot to a fresh prefix (the
#               default --parallel 8, zstd -1, dedup on); `aws s3 cp` of
#               the data file (its defaults: 8 MiB parts, 10 at once); the
#               same backup encrypted (--key-file) to another prefix
#   restore     basalt backup verify --deep of that backup (download,
#               decrypt, hash: a restore without the writes); basalt backup
#               restore into a new volume; `aws s3 cp` of the uploaded
#               object to a local file, then that file copied into a new
#               volume through basalt-nbd (nbdcopy): the restore a plain
#               upload allows (nbdcopy reading a pipe from `aws s3 cp ... -`
#               is 4x slower: one request at a time)
#               (full and restore: ROUNDS times, the seven rows in turn)
#   incremental a contiguous 1% of SIZE overwritten with random data, a
#               snapshot, a backup (incremental); then the same 1% as 1 MiB
#               writes at random places in the data, a snapshot, a backup
#   parallel 1  the full backup with --parallel 1 (one transfer at a time)
#   level 3     the full backup with --compression-level 3 (default 1)
# Each row: wall seconds, MB/s of DATA (10^6 bytes/s) and of the SIZE
# volume, CPU seconds of the client (basalt or aws, user + system), of
# the S3 server (radosgw, ceph-osd, ceph-mon) and of Basalt's OSDs (the
# client's includes basalt-nbd when it is on the path), radosgw's request
# count and bytes, and what the prefix holds afterwards.
#
#   bench/backup.sh [--quick] [--size SIZE] [--data SIZE] [--rounds N]
#                   [--osd-size SIZE] [--dir DIR] [--build DIR]
#
# Defaults: a 4G volume with 2G of data, 2 rounds, OSDs of 7G (--quick:
# 512M, 256M, 1 round, 2G). --build DIR uses Basalt as already built there
# (default: build/, built first). Output in bench/results/backup-TIME/:
# table.md, results.json, each command's JSON and timing. Everything it
# starts it stops, by PID. Needs root and RAM for the bucket (radosgw on
# memstore): 18 GiB free at the defaults. About 5 minutes (--quick: 2).
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
size=4G data=2G rounds=2 osd_size=7G dir=/var/tmp build=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) size=512M data=256M rounds=1 osd_size=2G; shift ;;
	--size) size=$2; shift 2 ;;
	--data) data=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "backup.sh: unknown option $1" >&2; usage ;;
	esac
done
bytes() { numfmt --from=iec "$1" 2>/dev/null || { echo "backup.sh: bad size $1" >&2; exit 2; }; }
size_b=$(bytes "$size") data_b=$(bytes "$data")
M=$((1 << 20))
[ "$data_b" -le "$size_b" ] && [ $((data_b % (8 * M))) = 0 ] && [ $((size_b % (8 * M))) = 0 ] ||
	{ echo "backup.sh: --data must fit in --size, both multiples of 8 MiB" >&2; exit 2; }
case $rounds in '' | *[!0-9]* | 0) echo "backup.sh: --rounds takes a positive count" >&2; exit 2 ;; esac
[ -x /usr/bin/aws ] || { echo "backup.sh: needs Debian's awscli (/usr/bin/aws)" >&2; exit 2; }
# memstore's resident size grows by about 3 x DATA a round (it holds ~1.5x
# what it stores and reuses little of what a delete frees); short of RAM it
# stalls radosgw for minutes instead of failing.
need=$(((3 * rounds + 2) * data_b + 2048 * M))
have=$(($(awk '/^MemAvailable/ {print $2}' /proc/meminfo) * 1024))
[ "$have" -ge "$need" ] || { echo "backup.sh: needs $((need >> 30)) GiB of free memory" \
	"(radosgw's memstore holds the bucket in RAM), $((have >> 30)) GiB available:" \
	"try fewer --rounds or less --data" >&2; exit 2; }

. bench/lib.sh
bench_build
bench_workspace backup
. tests/integration/rgw_lib.sh
# rgw_lib.sh keeps its daemons under $dir; this run keeps everything in $work.
dir=$work
trap 'rgw_down; bench_stop' EXIT

echo "== Basalt: 3 monitors, 3 OSDs of $osd_size; radosgw on memstore" >&2
bench_cluster "$work/basalt" "$osd_size" rbd
"$build/basalt" volume create bench --size "$size" >/dev/null
bench_nbd "$work/basalt-nbd.log"
pid[basalt-nbd]=$nbd_pid
# Every full backup and upload goes to a prefix of its own, removed
# (forget) once no later row reads it: memstore keeps the bucket in RAM.
rgw_memstore_bytes=$((6 * data_b + 2 * 1024 * M))
rgw_up >"$work/rgw-up.log" 2>&1 || { cat "$work/rgw-up.log" >&2; exit 1; }
rgw_bucket bench
# The first object makes radosgw's data and index pools: not in any row.
echo warm | rgw_aws s3 cp - s3://bench/warm --only-show-errors
mapfile -t osds < <(awk '$1 ~ /^osd/ {print $2}' "$work/basalt/pids")
asok=$work/rgw/run/client.rgw.gw.asok

echo "== data: $data in 8 pieces of a $size volume, half random, half log-like text" >&2
python3 - "$work/data" "$work/image" "$size_b" "$data_b" <<'PY'
import os, random, sys
data_path, image_path, size, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(7)
words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(2000)]
levels = [b"INFO"] * 3 + [b"DEBUG", b"WARN", b"ERROR"]
lines = []  # 65,536 distinct lines: repeats within a chunk, never a whole chunk twice
for _ in range(1 << 16):
    ts = b"2026-12-%02d %02d:%02d:%02d.%03d" % (rng.randint(1, 28), rng.randint(0, 23),
                                                rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999))
    msg = b" ".join(rng.choices(words, k=rng.randint(3, 12)))
    lines.append(b"%s %s [%s] %s id=%d\n" % (ts, rng.choice(levels), rng.choice(words), msg,
                                            rng.getrandbits(32)))
piece, stride = total // 8, size // 8
with open(data_path, "wb") as data, open(image_path, "wb") as image:
    image.truncate(size)
    for i in range(8):
        if i % 2 == 0:
            buf = os.urandom(piece)
        else:
            text = bytearray()
            while len(text) < piece:
                text += b"".join(rng.choices(lines, k=20000))
            buf = bytes(text[:piece])
        data.write(buf)
        image.seek(i * stride)
        image.write(buf)
PY
nbdcopy --destination-is-zero "$work/image" "nbd://127.0.0.1:$nbd_port/bench"
rm "$work/image"
"$build/basalt" snap create bench@full >/dev/null
"$build/basalt" backup key create "$work/key" >/dev/null

# forget PREFIX: its objects removed from the bucket and radosgw's garbage
# (an upload's parts) collected now, not hours later.
forget() {
	rgw_aws s3 rm --recursive --only-show-errors "s3://bench/$1"
	radosgw-admin -c "$work/rgw/ceph.conf" gc process --include-all >/dev/null 2>&1
}
# rgw_counters: radosgw's "requests put_bytes get_bytes" so far.
rgw_counters() {
	ceph --admin-daemon "$asok" perf dump |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["rgw"]; print(r["req"], r["put_b"], r["get_b"])'
}
# row NAME WHAT TOOL ROUND PREFIX -- COMMAND...: runs COMMAND (stdout in
# $out/NAME.out) and appends a JSON line to $out/rows: wall and CPU
# seconds of the command, CPU seconds of the S3 server and of Basalt's
# OSDs meanwhile, radosgw's counters moved, and the bytes under PREFIX
# in the bucket afterwards (none for "-"). The CPU of the PIDs in
# row_also (basalt-nbd) counts as the client's.
row_also=()
row() {
	local name=$1 what=$2 tool=$3 round=$4 prefix=$5 c0 c1 o0 o1 r0 r1 e0 e1 rss stored=null
	shift 6
	echo "== $what: $tool, round $round" >&2
	r0=$(rgw_counters)
	e0=$(cpu_seconds - "${row_also[@]}")
	c0=$(cpu_seconds - "${rgw_pid[@]}")
	o0=$(cpu_seconds - "${osds[@]}")
	/usr/bin/time -f '%e %U %S' -o "$out/$name.time" "$@" >"$out/$name.out" ||
		{ echo "backup.sh: $what ($tool) failed: $(tail -3 "$out/$name.out")" >&2; exit 1; }
	c1=$(cpu_seconds - "${rgw_pid[@]}")
	o1=$(cpu_seconds - "${osds[@]}")
	r1=$(rgw_counters)
	rss=$(awk '/^VmRSS/ {printf "%.0f\n", $2 * 1024}' "/proc/${rgw_pid[osd.0]}/status")
	e1=$(cpu_seconds - "${row_also[@]}")
	[ "$prefix" = - ] || stored=$(rgw_aws s3 ls "s3://bench/$prefix" --recursive --summarize |
		awk '/Total Size:/ {print $3}')
	python3 - "$name" "$what" "$tool" "$round" "$(cat "$out/$name.time")" "$c0 $c1" "$o0 $o1" \
		"$r0 $r1" "$stored" "$e0 $e1" "$rss" >>"$out/rows" <<'PY'
import json, sys
name, what, tool, rnd, t, c, o, r, stored, e, rss = sys.argv[1:]
wall, user, sys_ = map(float, t.split()[-3:])
e0, e1 = map(float, e.split())
c0, c1 = map(float, c.split()); o0, o1 = map(float, o.split())
r = list(map(int, r.split()))
print(json.dumps({"name": name, "what": what, "tool": tool, "round": int(rnd), "wall_s": wall,
                  "client_cpu_s": user + sys_ + e1 - e0, "s3_cpu_s": c1 - c0, "osd_cpu_s": o1 - o0,
                  "requests": r[3] - r[0], "put_bytes": r[4] - r[1], "get_bytes": r[5] - r[2],
                  "stored_bytes": json.loads(stored), "memstore_rss_bytes": int(rss)}))
PY
}
# The programs themselves (/usr/bin/time runs no shell functions).
basalt=("$build/basalt" --json)
aws=(/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" --only-show-errors)

: >"$out/rows"
for r in $(seq "$rounds"); do
	row "full-basalt-$r" full "basalt" "$r" "full-$r/" -- \
		"${basalt[@]}" backup create bench@full --to "s3://bench/full-$r"
	row "full-aws-$r" full "aws s3 cp" "$r" "aws-$r" -- "${aws[@]}" s3 cp "$work/data" "s3://bench/aws-$r"
	row "full-encrypted-$r" full "basalt, encrypted" "$r" "enc-$r/" -- \
		"${basalt[@]}" backup create bench@full --to "s3://bench/enc-$r" --key-file "$work/key"
	forget "enc-$r/"
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' \
		"$out/full-basalt-$r.out")
	row "verify-basalt-$r" "verify --deep" "basalt" "$r" - -- \
		"${basalt[@]}" backup verify "$id" --deep --repo "s3://bench/full-$r"
	row "restore-basalt-$r" restore "basalt" "$r" - -- \
		"${basalt[@]}" backup restore "$id" --repo "s3://bench/full-$r" --to "restored-$r"
	"$build/basalt" volume create "copied-$r" --size "$size" >/dev/null
	row "restore-aws-$r" restore "aws s3 cp" "$r" - -- "${aws[@]}" s3 cp "s3://bench/aws-$r" "$work/down"
	row_also=("$nbd_pid")
	row "restore-nbdcopy-$r" restore "then nbdcopy" "$r" - -- \
		nbdcopy --destination-is-zero "$work/down" "nbd://127.0.0.1:$nbd_port/copied-$r"
	row_also=()
	rm -f "$work/down"
	"$build/basalt" volume rm "restored-$r" >/dev/null
	"$build/basalt" volume rm "copied-$r" >/dev/null
	forget "aws-$r"
	# full-1 stays: the incremental backups below build on it.
	[ "$r" = 1 ] || forget "full-$r/"
done

# change KIND: 1% of the volume overwritten with random data through
# basalt-nbd: one contiguous run in the second piece ("contiguous"), or
# 1 MiB writes at random MiB-aligned places within the data ("scattered").
change() {
	/usr/bin/python3 - "nbd://127.0.0.1:$nbd_port/bench" "$1" "$size_b" "$data_b" <<'PY'
import os, random, sys
import nbd
uri, kind, size, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
M = 1 << 20
want = size // 100 // 4096 * 4096
h = nbd.NBD()
h.connect_uri(uri)
if kind == "contiguous":
    at = size // 8 + 3 * M + 12288  # not chunk-aligned, as a file system would write
    for off in range(0, want, M):  # basalt-nbd takes requests of up to 32 MiB
        h.pwrite(os.urandom(min(M, want - off)), at + off)
else:
    piece, stride = total // 8, size // 8
    rng = random.Random(11)
    places = rng.sample([i * stride + m * M for i in range(8) for m in range(piece // M)],
                        max(1, want // M))
    for at in places:
        h.pwrite(os.urandom(M), at)
h.flush()
h.shutdown()
PY
}
i=0
for kind in contiguous scattered; do
	i=$((i + 1))
	change "$kind"
	"$build/basalt" snap create "bench@inc$i" >/dev/null
	row "incremental-$kind" "incremental, 1% $kind" basalt 1 - -- \
		"${basalt[@]}" backup create "bench@inc$i" --to s3://bench/full-1
done
row "full-parallel-1" "full, --parallel 1" basalt 1 "p1/" -- \
	"${basalt[@]}" backup create bench@full --to s3://bench/p1 --parallel 1
forget p1/
row "full-level-3" "full, --compression-level 3" basalt 1 "l3/" -- \
	"${basalt[@]}" backup create bench@full --to s3://bench/l3 --compression-level 3

python3 - "$out" "$size_b" "$data_b" "$size" "$data" <<'PY' | tee "$out/table.md"
import json, statistics, sys
out, size_b, data_b, size, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [json.loads(l) for l in open(f"{out}/rows")]
for r in rows:
    try:
        r["basalt"] = json.load(open(f"{out}/{r['name']}.out"))
    except (ValueError, OSError):
        r["basalt"] = None
MiB, MB = 1 << 20, 1e6
print(f"## basalt backup and `aws s3 cp`: a {size} volume holding {data} "
      "(half random, half log-like text), to radosgw on this machine\n")
print("| step | tool | round | s | MB/s of the data | MB/s of the volume | client CPU s "
      "| radosgw CPU s | Basalt OSDs CPU s | requests | sent MiB | received MiB "
      "| read from the volume MiB | prefix holds MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def cell(v, fmt):
    return "" if v is None else fmt.format(v)
for r in rows:
    b = r["basalt"] or {}
    full = not r["what"].startswith("incremental")
    cells = [r["what"], r["tool"], r["round"], f"{r['wall_s']:.1f}",
             cell(full and data_b / r["wall_s"] / MB or None, "{:.0f}"),
             cell(full and size_b / r["wall_s"] / MB or None, "{:.0f}"),
             f"{r['client_cpu_s']:.1f}", f"{r['s3_cpu_s']:.1f}", f"{r['osd_cpu_s']:.1f}",
             f"{r['requests']:,}", f"{r['put_bytes'] / MiB:,.0f}", f"{r['get_bytes'] / MiB:,.0f}",
             cell(b.get("read_bytes") and b["read_bytes"] / MiB, "{:,.0f}"),
             cell(r["stored_bytes"] and r["stored_bytes"] / MiB, "{:,.0f}")]
    print("| " + " | ".join(map(str, cells)) + " |")

def mean(what, tool, key="wall_s"):
    v = [r[key] for r in rows if r["what"] == what and r["tool"] == tool]
    return statistics.mean(v) if v else None
summary = {}
full_b, full_a = mean("full", "basalt"), mean("full", "aws s3 cp")
enc = mean("full", "basalt, encrypted")
rest_b, rest_a = mean("restore", "basalt"), mean("restore", "aws s3 cp")
rest_s = rest_a + mean("restore", "then nbdcopy")
verify = mean("verify --deep", "basalt")
p1 = mean("full, --parallel 1", "basalt")
inc = {r["what"]: r for r in rows if r["what"].startswith("incremental")}
print("\n| figure | value |")
print("|---|---:|")
def line(key, text, value, fmt):
    summary[key] = value
    print(f"| {text} | {fmt.format(value)} |")
line("backup_mb_s", "full backup, MB/s of the data (mean)", data_b / full_b / MB, "{:.0f}")
line("aws_upload_mb_s", "`aws s3 cp` upload, MB/s (mean)", data_b / full_a / MB, "{:.0f}")
line("backup_vs_aws", "backup time ÷ upload time (goal ≤ 1)", full_b / full_a, "{:.2f}")
line("restore_mb_s", "restore into a new volume, MB/s of the data (mean)", data_b / rest_b / MB, "{:.0f}")
line("aws_download_mb_s", "`aws s3 cp` download to a file, MB/s (mean)", data_b / rest_a / MB, "{:.0f}")
line("restore_vs_aws", "restore time ÷ download time", rest_b / rest_a, "{:.2f}")
line("aws_copy_mb_s", "`aws s3 cp` to a file then nbdcopy into a new volume, MB/s (mean)", data_b / rest_s / MB, "{:.0f}")
line("restore_vs_copy", "restore time ÷ (download + nbdcopy) time", rest_b / rest_s, "{:.2f}")
line("verify_mb_s", "verify --deep, MB/s of the data (mean)", data_b / verify / MB, "{:.0f}")
line("encrypted_vs_plain", "encrypted full backup time ÷ plain", enc / full_b, "{:.2f}")
if p1:
    line("parallel1_vs_8", "full backup time, --parallel 1 ÷ --parallel 8", p1 / full_b, "{:.2f}")
l3 = mean("full, --compression-level 3", "basalt")
if l3:
    line("level3_vs_1", "full backup time, --compression-level 3 ÷ 1 (the default)", l3 / full_b, "{:.2f}")
line("backup_cpu_vs_aws", "client CPU s, backup ÷ upload",
     mean("full", "basalt", "client_cpu_s") / mean("full", "aws s3 cp", "client_cpu_s"), "{:.2f}")
full_stored = [r["stored_bytes"] for r in rows if r["what"] == "full" and r["tool"] == "basalt"][0]
line("stored_vs_data", "bucket bytes of a full backup ÷ data", full_stored / data_b, "{:.2f}")
for what, r in inc.items():
    k = what.split()[-1]
    line(f"incremental_{k}_vs_full", f"{what}: time ÷ full backup time", r["wall_s"] / full_b, "{:.3f}")
    if r["basalt"]:
        line(f"incremental_{k}_sent_mib", f"{what}: MiB sent",
             r["basalt"]["uploaded_bytes"] / MiB, "{:.1f}")
json.dump({"size_bytes": size_b, "data_bytes": data_b, "rows": rows, "summary": summary},
          open(f"{out}/results.json", "w"), indent=1)
PY
echo "results in $out" >&2
