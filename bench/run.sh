#!/usr/bin/env bash
# Runs publisher's benchmarks side by side with their references, on this machine:
#
#   send    digests (~20 KB, HTML + text) to N subscribers over SMTP into Postfix's
#           smtp-sink, alternating with smtp-source sending 20 KB messages to the same
#           sink over the same number of connections (20)
#   memory  peak RSS of `publisher run` for 10k, 100k and 1M subscribers
#   build   full `publisher build` of 10,000 pieces vs `hugo` on the same articles,
#           then a no-op `publisher run`, then incremental builds (one new piece
#           each) compared with a full build of the same input; CPU profiles
#   gotest  the go test -bench benchmarks of digest, feed, store and mail
#   replicas  1, 2 and 3 `publisher run` replicas sharing one send on one private
#           PostgreSQL cluster, into smtp-sink
#
# Usage: bench/run.sh [quick|full] [send] [memory] [build] [gotest] [replicas]
#   (no section names: all of them). quick shrinks every size and repeat count.
# Overrides in the environment: SEND_N, RUNS, MEM_NS ("10000 100000"), BUILD_N, BUILD_RUNS,
#   REPLICA_N, REPLICA_RUNS, SINK_PORT, CONNS, RESULTS (folder), THP (always, madvise or
#   never: the kernel's transparent huge pages mode for this run, put back at the end;
#   root only; unset, the machine's mode is left as it is and only recorded).
# Results: bench/out/results/ (bench/out/results-quick/ in quick mode): summary.md
# (summary-SECTIONS.md when only some sections ran), raw logs, /usr/bin/time records
# and profiles.
# Not part of the test suite: it installs packages, needs about 8 minutes in full
# mode and loads the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out="$here/out"

mode=full
sections=()
for a in "$@"; do
	case "$a" in
	quick | full) mode=$a ;;
	send | memory | build | gotest | replicas) sections+=("$a") ;;
	*)
		echo "usage: $0 [quick|full] [send] [memory] [build] [gotest] [replicas]" >&2
		exit 2
		;;
	esac
done
[ ${#sections[@]} -eq 0 ] && sections=(send memory build gotest replicas)
want() { [[ " ${sections[*]} " == *" $1 "* ]]; }

if [ "$mode" = quick ]; then
	: "${SEND_N:=10000}" "${RUNS:=2}" "${MEM_NS:=10000 30000}" "${BUILD_N:=2000}" "${BUILD_RUNS:=2}"
	: "${REPLICA_N:=10000}" "${REPLICA_RUNS:=1}"
else
	: "${SEND_N:=100000}" "${RUNS:=3}" "${MEM_NS:=10000 100000 1000000}" "${BUILD_N:=10000}" "${BUILD_RUNS:=5}"
	: "${REPLICA_N:=50000}" "${REPLICA_RUNS:=3}"
fi
: "${SINK_PORT:=2525}" "${CONNS:=20}"
# Quick runs keep their figures apart from the full ones.
if [ "$mode" = quick ]; then res=${RESULTS:-$out/results-quick}; else res=${RESULTS:-$out/results}; fi

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- tools -----------------------------------------------------------------------
need_apt=()
[ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ] || need_apt+=(postfix)
[ -x /usr/bin/time ] || need_apt+=(time)
want replicas && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
	log "installing ${need_apt[*]}"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; }
fi
gobin=$(go env GOPATH)/bin
hugo=$(command -v hugo || true)
[ -z "$hugo" ] && [ -x "$gobin/hugo" ] && hugo=$gobin/hugo
if want build && [ -z "$hugo" ]; then
	log "installing hugo v0.165.0 (takes a few minutes)"
	go install github.com/gohugoio/hugo@v0.165.0
	hugo=$gobin/hugo
fi

mkdir -p "$out/bin" "$res"
log "building publisher and the bench tools"
(cd "$repo" && go build -o "$out/bin/publisher" ./cmd/publisher &&
	go build -o "$out/bin/benchgen" ./bench/cmd/benchgen &&
	go build -o "$out/bin/benchprof" ./bench/cmd/benchprof)
pub=$out/bin/publisher
gen=$out/bin/benchgen

# --- helpers -----------------------------------------------------------------------
now() { date +%s.%N; }
# stats NAME: reads numbers on stdin, prints "median min max n" (median of an even
# count is the mean of the middle two).
stats() {
	sort -g | awk '{v[NR]=$1} END {
		if (NR==0) {print "- - - 0"; exit}
		m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2
		printf "%.6g %.6g %.6g %d\n", m, v[1], v[NR], NR }'
}
# gtime FILE CMD...: runs CMD under GNU time, writing "wall_s maxrss_kb user_s sys_s".
gtime() {
	local f=$1
	shift
	/usr/bin/time -f '%e %M %U %S' -o "$f" "$@"
}
iso_to_epoch() { date -u -d "$1" +%s.%N; }

# A configuration for a working folder; the sink port and connections from above.
write_config() {
	cat >"$1/publisher.yaml" <<EOF
site:
  title: Bench Desk
  base_url: https://bench.example.org/
  description: Generated pieces for publisher's benchmarks.
content:
  dir: ${2:-content}
output:
  dir: public
data:
  dir: data
subscribers:
  dir: subscribers
mail:
  transport: smtp
  from: Bench Desk <digest@bench.example.org>
  smtp:
    host: 127.0.0.1
    port: $SINK_PORT
    tls: none
    connections: $CONNS
secret: bench-secret-0123456789abcdef0123456789abcdef
EOF
}

sink_pid=
start_sink() {
	if (exec 3<>/dev/tcp/127.0.0.1/"$SINK_PORT") 2>/dev/null; then
		echo "port $SINK_PORT is taken; set SINK_PORT" >&2
		exit 1
	fi
	/usr/sbin/smtp-sink -u nobody -c 127.0.0.1:"$SINK_PORT" 1000 >"$res/smtp-sink.log" 2>&1 &
	sink_pid=$!
	for _ in $(seq 50); do
		(exec 3<>/dev/tcp/127.0.0.1/"$SINK_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "smtp-sink did not start" >&2
	exit 1
}
stop_sink() {
	if [ -n "$sink_pid" ]; then
		kill "$sink_pid" 2>/dev/null || true
		wait "$sink_pid" 2>/dev/null || true
		sink_pid=
	fi
}
# THP: the kernel's transparent huge pages mode. A Go heap gets huge pages only
# in mode "always"; in "madvise" every 4 KB of it is a page fault of its own.
thp_file=/sys/kernel/mm/transparent_hugepage/enabled
thp_before=
if [ -n "${THP:-}" ]; then
	case "$THP" in always | madvise | never) ;; *) echo "THP must be always, madvise or never" >&2 && exit 2 ;; esac
	thp_before=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$thp_file")
	echo "$THP" >"$thp_file"
fi
restore_thp() {
	if [ -n "$thp_before" ]; then
		echo "$thp_before" >"$thp_file" || true
		thp_before=
	fi
}
trap 'stop_sink; restore_thp' EXIT

# A run of some sections only keeps its own summary, so it does not replace a full one.
if [ ${#sections[@]} -eq 5 ]; then
	summary=$res/summary.md
else
	summary=$res/summary-$(IFS=-; echo "${sections[*]}").md
fi
{
	echo "# publisher benchmarks: $(date -u +%Y-%m-%dT%H:%M:%SZ), mode $mode"
	echo
	echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -m | awk '/^Mem:/{print $2}') MB RAM, $(go version | cut -d' ' -f3)"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- transparent huge pages: $(cat "$thp_file" 2>/dev/null || echo unknown)$([ -n "$thp_before" ] && echo " (set by THP for this run; the machine's mode is $thp_before)")"
	echo "- commit: $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo none) (plus uncommitted changes: $(cd "$repo" && git status --porcelain 2>/dev/null | wc -l) paths)"
	echo
} >"$summary"

# send_workdir DIR N: a working folder with 3 undated pieces (published when first
# seen, so inside every newcomer's lookback) whose digest is about 20 KB, and N
# subscribers with cadence immediate and no topic filter.
send_workdir() {
	local dir=$1 n=$2
	mkdir -p "$dir/subscribers"
	write_config "$dir"
	"$gen" pieces -n 3 -paragraphs 3 -undated -dir "$dir/content"
	"$gen" subscribers -n "$n" -out "$dir/subscribers/list.csv"
}

# pub_run DIR TAG: one fresh `publisher run` (empty store, so every subscriber is
# synced, planned and sent) under GNU time. Prints
# "sent total_wall_s send_phase_s maxrss_kb user_s sys_s".
pub_run() {
	local dir=$1 tag=$2
	rm -rf "$dir/data" "$dir/public"
	local t0 t1 st=0
	t0=$(now)
	(cd "$dir" && gtime "$res/$tag.time" "$pub" run >"$res/$tag.out" 2>"$res/$tag.log") || st=$?
	t1=$(now)
	if [ "$st" -ne 0 ]; then
		log "publisher run ($tag) exited $st; see $res/$tag.log"
	fi
	local sent planned_at
	sent=$(sed -n 's/.*, sent \([0-9]*\),.*/\1/p' "$res/$tag.out")
	planned_at=$(sed -n 's/^time=\([^ ]*\) .*msg="planned digests".*/\1/p' "$res/$tag.log" | head -1)
	if [ -z "$planned_at" ] || [ -z "$sent" ]; then
		log "publisher run ($tag): no summary or no 'planned digests' line"
		echo "0 0 0 0 0 0"
		return
	fi
	local p w rss u s
	p=$(iso_to_epoch "$planned_at")
	read -r w rss u s <"$res/$tag.time"
	echo "$sent $w $(echo "$t1 - $p" | bc -l) $rss $u $s"
}

# --- send ------------------------------------------------------------------------
send_rss_100k=()
if want send; then
	log "send: $SEND_N subscribers, $RUNS runs each, $CONNS connections"
	dir=$out/send
	send_workdir "$dir" "$SEND_N"
	start_sink
	# Size of one real message, as it goes on the wire.
	(cd "$dir" && rm -rf data && "$pub" preview --subscriber reader0000001@bench.example.org >"$res/send-sample.eml" 2>/dev/null) || true
	msg_bytes=$(wc -c <"$res/send-sample.eml")
	: >"$res/send-source.rates"
	: >"$res/send-publisher.rates"
	: >"$res/send-publisher.total-rates"
	: >"$res/send-publisher.rss"
	: >"$res/send-runs.txt"
	for i in $(seq "$RUNS"); do
		log "send run $i/$RUNS: smtp-source"
		t0=$(now)
		/usr/sbin/smtp-source -s "$CONNS" -d -m "$SEND_N" -l 20000 127.0.0.1:"$SINK_PORT" >"$res/send-source-$i.log" 2>&1
		t1=$(now)
		echo "$SEND_N / ($t1 - $t0)" | bc -l >>"$res/send-source.rates"
		log "send run $i/$RUNS: publisher"
		read -r sent w sp rss u s < <(pub_run "$dir" "send-publisher-$i")
		if [ "$sent" != "$SEND_N" ]; then
			log "publisher sent $sent of $SEND_N"
		fi
		echo "$sent / $sp" | bc -l >>"$res/send-publisher.rates"
		echo "$sent / $w" | bc -l >>"$res/send-publisher.total-rates"
		echo "$rss" >>"$res/send-publisher.rss"
		echo "run $i: smtp-source $(tail -1 "$res/send-source.rates" | xargs printf '%.0f')/s; publisher sent $sent, send phase ${sp}s, whole run ${w}s, user ${u}s sys ${s}s, max RSS ${rss} KB" >>"$res/send-runs.txt"
	done
	# A CPU profile of the send path, on a smaller list (the profile's shape is the
	# same; the full list would only take longer).
	prof_n=$((SEND_N < 30000 ? SEND_N : 30000))
	log "send: CPU profile of a $prof_n-subscriber run"
	pdir=$out/send-prof
	mkdir -p "$pdir/subscribers"
	write_config "$pdir"
	rm -rf "$pdir/content" "$pdir/data" "$pdir/public"
	cp -r "$dir/content" "$pdir/content"
	"$gen" subscribers -n "$prof_n" -out "$pdir/subscribers/list.csv"
	(cd "$pdir" && "$out/bin/benchprof" -cpuprofile "$res/send-cpu.prof" -- run >/dev/null 2>&1) || log "profiled send run failed"
	go tool pprof -top -cum -nodecount=60 "$out/bin/benchprof" "$res/send-cpu.prof" >"$res/send-cpu-cum.txt" 2>/dev/null || true
	stop_sink
	read -r sm smin smax _ < <(stats <"$res/send-source.rates")
	read -r pm pmin pmax _ < <(stats <"$res/send-publisher.rates")
	read -r tm tmin tmax _ < <(stats <"$res/send-publisher.total-rates")
	read -r rm rmin rmax _ < <(stats <"$res/send-publisher.rss")
	# Ratio of medians, and each run's ratio against the smtp-source run just before it.
	paste "$res/send-publisher.rates" "$res/send-source.rates" | awk '{print $1/$2}' >"$res/send-ratios"
	read -r qm qmin qmax _ < <(stats <"$res/send-ratios")
	[ "$SEND_N" = 100000 ] && mapfile -t send_rss_100k <"$res/send-publisher.rss"
	{
		echo "## Send throughput: $SEND_N messages, $CONNS connections, $RUNS runs each (alternating)"
		echo
		echo "publisher message size: $msg_bytes bytes (HTML + text, quoted-printable); smtp-source: 20000 bytes."
		echo
		echo "| sender | median msg/s | min | max |"
		echo "| --- | ---: | ---: | ---: |"
		printf '| smtp-source -s %s -d -m %s -l 20000 | %.0f | %.0f | %.0f |\n' "$CONNS" "$SEND_N" "$sm" "$smin" "$smax"
		printf '| publisher run, send phase | %.0f | %.0f | %.0f |\n' "$pm" "$pmin" "$pmax"
		printf '| publisher run, whole run (sync + plan + send) | %.0f | %.0f | %.0f |\n' "$tm" "$tmin" "$tmax"
		echo
		printf 'Ratio publisher/smtp-source (send phase, per run pair): median %.3f, min %.3f, max %.3f; ratio of medians %.3f. Goal: >= 0.6.\n' "$qm" "$qmin" "$qmax" "$(echo "$pm / $sm" | bc -l)"
		echo
		printf 'Peak RSS of those runs: median %.1f MB, min %.1f, max %.1f.\n' "$(echo "$rm/1024" | bc -l)" "$(echo "$rmin/1024" | bc -l)" "$(echo "$rmax/1024" | bc -l)"
		echo
		echo '```'
		cat "$res/send-runs.txt"
		echo '```'
		echo
		echo "CPU profile of a $prof_n-subscriber run (send-cpu.prof; cumulative, top entries; full list in send-cpu-cum.txt):"
		echo
		echo '```'
		sed -n '4,40p' "$res/send-cpu-cum.txt"
		echo '```'
		echo
	} >>"$summary"
fi

# --- memory ----------------------------------------------------------------------
if want memory; then
	log "memory: peak RSS for $MEM_NS subscribers"
	start_sink
	{
		echo "## Memory: peak RSS of a fresh \`publisher run\` (sync + plan + send to smtp-sink)"
		echo
		echo "| subscribers | peak RSS MB | sent | whole run s | send phase s | user s | sys s |"
		echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	} >>"$summary"
	for n in $MEM_NS; do
		if [ "$n" = 100000 ] && [ ${#send_rss_100k[@]} -gt 0 ]; then
			read -r m mn mx _ < <(printf '%s\n' "${send_rss_100k[@]}" | stats)
			printf '| %s | %.1f (median of the %d send runs above; min %.1f, max %.1f) | | | | | |\n' "$n" "$(echo "$m/1024" | bc -l)" "${#send_rss_100k[@]}" "$(echo "$mn/1024" | bc -l)" "$(echo "$mx/1024" | bc -l)" >>"$summary"
			continue
		fi
		dir=$out/mem-$n
		send_workdir "$dir" "$n"
		log "memory: $n subscribers"
		read -r sent w sp rss u s < <(pub_run "$dir" "memory-$n")
		printf '| %s | %.1f | %s | %.1f | %.1f | %s | %s |\n' "$n" "$(echo "$rss/1024" | bc -l)" "$sent" "$w" "$sp" "$u" "$s" >>"$summary"
		rm -rf "$dir/data" # the 1M store is over a gigabyte
	done
	stop_sink
	echo >>"$summary"
fi

# --- build -----------------------------------------------------------------------
if want build; then
	dir=$out/build
	hout=$out/hugo-out
	# Every timed build writes into folders of its own, and nothing is deleted
	# shortly before one. This file system (ext4 without a journal) passes over
	# inodes freed in the last 60 s, 360 s while their inode-table block is
	# dirty, whenever it allocates one: creating 10,000 folders with a file each
	# took 0.6 s of system time on a quiet disk and 2-8 s within minutes of
	# deleting such trees (by hand on this machine). So the output trees are
	# deleted at the end of this section, and the generated content is kept
	# between runs; the next run of the section should come more than 6
	# minutes later.
	# The inputs go to a folder named after the size and the generator, made once:
	# regenerating in place would delete 23,000 files right before the timed builds.
	gdir=$out/gen-$(echo "$BUILD_N pieces, benchgen $(sha256sum "$gen")" | sha256sum | cut -c1-16)
	if [ ! -e "$gdir/complete" ]; then
		log "build: generating $BUILD_N pieces and the Hugo site in $gdir"
		"$gen" pieces -n "$BUILD_N" -dir "$gdir/content"
		"$gen" hugo -n "$BUILD_N" -dir "$gdir/hugo"
		touch "$gdir/complete"
	fi
	rm -f "$gdir"/content/zz-bench-extra-*.md # left by an interrupted run
	mkdir -p "$dir/subscribers"
	rm -f "$dir/subscribers/"*.csv
	write_config "$dir" "$gdir/content"
	if compgen -G "$dir/public*" >/dev/null || compgen -G "$dir/data*" >/dev/null || [ -e "$hout" ]; then
		log "build: deleting trees left by an interrupted run; the figures may suffer (see above)"
		rm -rf "$hout" "$dir"/public* "$dir"/data*
	fi
	mkdir -p "$hout"
	sync
	"$hugo" version >"$res/hugo-version.txt" 2>&1 || true
	: >"$res/build-hugo.txt"
	: >"$res/build-publisher.txt"
	for i in $(seq "$BUILD_RUNS"); do
		# Each build starts with nothing left to write back: otherwise the kernel
		# writes the previous build's 100-130 MB (the other tool's) on the same
		# two cores while this one runs.
		sync
		log "build run $i/$BUILD_RUNS: hugo"
		HUGO_CACHEDIR=$hout/cache-$i gtime "$res/build-hugo-$i.time" "$hugo" --quiet -s "$gdir/hugo" -d "$hout/public-$i" >"$res/build-hugo-$i.log" 2>&1
		cat "$res/build-hugo-$i.time" >>"$res/build-hugo.txt"
		sync
		log "build run $i/$BUILD_RUNS: publisher build"
		(cd "$dir" && PUBLISHER_OUTPUT_DIR=public-$i PUBLISHER_DATA_DIR=data-$i gtime "$res/build-publisher-$i.time" "$pub" build >"$res/build-publisher-$i.out" 2>"$res/build-publisher-$i.log")
		cat "$res/build-publisher-$i.time" >>"$res/build-publisher.txt"
	done
	hugo_files=$(find "$hout/public-1" -type f | wc -l)
	pub_files=$(find "$dir/public-1" -type f | wc -l)
	hugo_bytes=$(du -sb "$hout/public-1" | cut -f1)
	pub_bytes=$(du -sb "$dir/public-1" | cut -f1)

	# The no-op run: the store and output already match the content, no subscribers.
	: >"$res/noop-publisher.txt"
	sync
	for i in $(seq "$BUILD_RUNS"); do
		log "build: no-op run $i/$BUILD_RUNS"
		(cd "$dir" && PUBLISHER_OUTPUT_DIR=public-1 PUBLISHER_DATA_DIR=data-1 gtime "$res/noop-$i.time" "$pub" run >"$res/noop-$i.out" 2>"$res/noop-$i.log")
		cat "$res/noop-$i.time" >>"$res/noop-publisher.txt"
	done

	# The incremental run: one new piece, the newest, in the archive the first
	# build made (public-1), BUILD_RUNS times (a piece more each time). A file
	# stamped before each run tells which files it wrote.
	: >"$res/incremental-publisher.txt"
	: >"$res/incremental-written.txt"
	for i in $(seq "$BUILD_RUNS"); do
		extra=$gdir/content/zz-bench-extra-$i.md
		printf -- '---\ntitle: "One more piece (%s)"\ndate: 2026-11-02T09:00:00Z\ntopics: ["Energy"]\nsummary: "The piece the incremental runs add."\n---\n\nIt adds one paragraph to a long archive.\n' "$i" >"$extra"
		touch -d '-1 minute' "$extra" # older than the 2 s in which an mtime is not trusted
		sync
		touch "$res/incremental-$i.stamp"
		sleep 1.1 # so that a file written now is newer than the stamp
		log "build: incremental run $i/$BUILD_RUNS"
		(cd "$dir" && PUBLISHER_OUTPUT_DIR=public-1 PUBLISHER_DATA_DIR=data-1 gtime "$res/incremental-$i.time" "$pub" build >"$res/incremental-$i.out" 2>"$res/incremental-$i.log")
		cat "$res/incremental-$i.time" >>"$res/incremental-publisher.txt"
		newer=$(find "$dir/public-1" -type f -newer "$res/incremental-$i.stamp" | sed "s|^$dir/public-1/||" | sort)
		echo "run $i: $(echo "$newer" | grep -c .) files written: $(echo $newer)" >>"$res/incremental-written.txt"
	done
	# The same input built from scratch (the store copied, for the first-seen
	# times of the undated pieces) must give the very same tree.
	rm -rf "$dir/public-verify" "$dir/data-verify"
	mkdir -p "$dir/data-verify"
	cp "$dir/data-1/publisher.db" "$dir/data-verify/"
	log "build: a full build of the same input, to compare"
	(cd "$dir" && PUBLISHER_OUTPUT_DIR=public-verify PUBLISHER_DATA_DIR=data-verify "$pub" build >"$res/incremental-verify.out" 2>"$res/incremental-verify.log")
	if diff -r "$dir/public-1" "$dir/public-verify" >"$res/incremental-diff.txt" 2>&1; then
		same_tree="the same tree, byte for byte ($(find "$dir/public-1" -type f | wc -l) files)"
	else
		same_tree="DIFFERENT trees: see incremental-diff.txt"
	fi
	rm -f "$gdir"/content/zz-bench-extra-*.md

	log "build: CPU profiles (full build, no-op run)"
	(
		cd "$dir" && export PUBLISHER_OUTPUT_DIR=public-prof PUBLISHER_DATA_DIR=data-prof &&
			"$out/bin/benchprof" -cpuprofile "$res/build-cpu.prof" -memprofile "$res/build-mem.prof" -- build >/dev/null 2>&1 &&
			"$out/bin/benchprof" -cpuprofile "$res/noop-cpu.prof" -- run >/dev/null 2>&1
	)
	go tool pprof -top -nodecount=30 "$out/bin/benchprof" "$res/build-cpu.prof" >"$res/build-cpu-top.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount=45 "$out/bin/benchprof" "$res/build-cpu.prof" >"$res/build-cpu-cum.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount=45 "$out/bin/benchprof" "$res/noop-cpu.prof" >"$res/noop-cpu-cum.txt" 2>/dev/null
	go tool pprof -sample_index=alloc_space -top -cum -nodecount=30 "$out/bin/benchprof" "$res/build-mem.prof" >"$res/build-alloc-cum.txt" 2>/dev/null

	col() { awk -v c="$1" '{print $c}' "$2"; }
	read -r hm hmin hmax _ < <(col 1 "$res/build-hugo.txt" | stats)
	read -r bm bmin bmax _ < <(col 1 "$res/build-publisher.txt" | stats)
	read -r nm nmin nmax _ < <(col 1 "$res/noop-publisher.txt" | stats)
	read -r hr hrmin hrmax _ < <(col 2 "$res/build-hugo.txt" | stats)
	read -r br brmin brmax _ < <(col 2 "$res/build-publisher.txt" | stats)
	read -r nr nrmin nrmax _ < <(col 2 "$res/noop-publisher.txt" | stats)
	read -r hc _ < <(awk '{print $3+$4}' "$res/build-hugo.txt" | stats)
	read -r bc_ _ < <(awk '{print $3+$4}' "$res/build-publisher.txt" | stats)
	read -r nc _ < <(awk '{print $3+$4}' "$res/noop-publisher.txt" | stats)
	read -r im imin imax _ < <(col 1 "$res/incremental-publisher.txt" | stats)
	read -r ir irmin irmax _ < <(col 2 "$res/incremental-publisher.txt" | stats)
	read -r ic _ < <(awk '{print $3+$4}' "$res/incremental-publisher.txt" | stats)
	paste "$res/build-publisher.txt" "$res/build-hugo.txt" | awk '{print $1/$5}' >"$res/build-ratios"
	read -r xm xmin xmax _ < <(stats <"$res/build-ratios")
	mb() { echo "$1/1024" | bc -l | xargs printf '%.0f'; }
	{
		echo "## Build: $BUILD_N pieces, $BUILD_RUNS runs each (alternating hugo / publisher, sync before each)"
		echo
		echo "$(head -1 "$res/hugo-version.txt")"
		echo
		echo "| job | median wall s | min | max | median CPU s (user+sys) | median peak RSS MB | min | max |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		printf '| hugo (%s files, %s MB) | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n' "$hugo_files" "$((hugo_bytes / 1048576))" "$hm" "$hmin" "$hmax" "$hc" "$(mb "$hr")" "$(mb "$hrmin")" "$(mb "$hrmax")"
		printf '| publisher build (%s files, %s MB) | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n' "$pub_files" "$((pub_bytes / 1048576))" "$bm" "$bmin" "$bmax" "$bc_" "$(mb "$br")" "$(mb "$brmin")" "$(mb "$brmax")"
		printf '| publisher run, no-op | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n' "$nm" "$nmin" "$nmax" "$nc" "$(mb "$nr")" "$(mb "$nrmin")" "$(mb "$nrmax")"
		printf '| publisher build, incremental (one new piece) | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n' "$im" "$imin" "$imax" "$ic" "$(mb "$ir")" "$(mb "$irmin")" "$(mb "$irmax")"
		echo
		printf 'publisher build / hugo (wall, per run pair): median %.3f, min %.3f, max %.3f (goal <= 0.5). No-op run / full build (medians): %.3f (goal <= 0.05). Incremental / full build (medians): %.3f (goal <= 0.10).\n' "$xm" "$xmin" "$xmax" "$(echo "$nm / $bm" | bc -l)" "$(echo "$im / $bm" | bc -l)"
		echo
		echo "Incremental runs, the files each wrote (mtime newer than a stamp taken before it):"
		echo
		echo '```'
		cat "$res/incremental-written.txt"
		echo '```'
		echo
		echo "After them, a full build of the same input into a fresh folder: $same_tree."
		echo
		echo "CPU profile of the full build (cumulative, top entries; full list in build-cpu-cum.txt):"
		echo
		echo '```'
		sed -n '4,40p' "$res/build-cpu-cum.txt"
		echo '```'
		echo
		echo "CPU profile of the no-op run: noop-cpu-cum.txt. Allocation profile of the build: build-alloc-cum.txt."
		echo
	} >>"$summary"
	log "build: deleting the output trees (and inputs of other sizes or generators)"
	rm -rf "$hout" "$dir"/public* "$dir"/data* "$dir/content" "$out/hugo" "$out/build-content.stamp" "$res"/incremental-*.stamp
	for g in "$out"/gen-*; do
		[ "$g" = "$gdir" ] || rm -rf "$g"
	done
fi

# --- replicas --------------------------------------------------------------------
# A private PostgreSQL cluster (initdb + pg_ctl in a temporary folder, as nobody),
# then for R = 1, 2, 3: a fresh database, R working folders (R hosts: each its own
# data and output, the same content and list), R `publisher run` started at once.
pg_dir=
stop_pg() {
	if [ -n "$pg_dir" ]; then
		runuser -u nobody -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$pg_dir"
		pg_dir=
	fi
}
trap 'stop_sink; stop_pg; restore_thp' EXIT
if want replicas; then
	pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
	pg_dir=$(mktemp -d /tmp/bench-pg-XXXXXX)
	chown nobody "$pg_dir"
	pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	runuser -u nobody -- "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 >"$res/replicas-initdb.log" 2>&1
	# Durable settings (fsync on): the figures are those of a real database.
	runuser -u nobody -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
		-o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
	psql_() { psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres "$@"; }
	log "replicas: $REPLICA_N subscribers, $REPLICA_RUNS runs per replica count, $CONNS connections each, PostgreSQL on port $pg_port"
	start_sink
	base=$out/replicas
	for k in 1 2 3; do
		send_workdir "$base-$k" "$REPLICA_N"
		# The same pieces and list on every host.
		if [ "$k" -gt 1 ]; then
			rm -rf "$base-$k/content" "$base-$k/subscribers"
			cp -r "$base-1/content" "$base-1/subscribers" "$base-$k/"
		fi
	done
	: >"$res/replicas-runs.txt"
	for r in 1 2 3; do
		: >"$res/replicas-$r.rates"
		for i in $(seq "$REPLICA_RUNS"); do
			psql_ -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
			dsn="postgres://postgres@127.0.0.1:$pg_port/bench?sslmode=disable"
			pids=()
			t0=$(now)
			for k in $(seq "$r"); do
				rm -rf "$base-$k/data" "$base-$k/public"
				(cd "$base-$k" && PUBLISHER_STORE_DRIVER=postgres PUBLISHER_STORE_DSN=$dsn \
					"$pub" run >"$res/replicas-$r-$i-$k.out" 2>"$res/replicas-$r-$i-$k.log") &
				pids+=($!)
			done
			for p in "${pids[@]}"; do wait "$p" || log "a replica exited $?"; done
			t1=$(now)
			sent=0
			shares=""
			for k in $(seq "$r"); do
				n=$(sed -n 's/.*, sent \([0-9]*\),.*/\1/p' "$res/replicas-$r-$i-$k.out")
				sent=$((sent + ${n:-0}))
				shares="$shares ${n:-0}"
			done
			planned_at=$(cat "$res"/replicas-"$r"-"$i"-*.log | sed -n 's/^time=\([^ ]*\) .*msg="planned digests".*/\1/p' | sort | head -1)
			sp=$(echo "$t1 - $(iso_to_epoch "$planned_at")" | bc -l)
			echo "$sent / $sp" | bc -l >>"$res/replicas-$r.rates"
			echo "$r replicas, run $i: sent $sent (per replica:$shares), whole run $(echo "$t1 - $t0" | bc -l | xargs printf '%.1f') s, send phase $(printf '%.1f' "$sp") s" >>"$res/replicas-runs.txt"
			if [ "$sent" != "$REPLICA_N" ]; then
				log "replicas: $r replicas sent $sent of $REPLICA_N"
			fi
		done
	done
	stop_sink
	stop_pg
	{
		echo "## Replicas sharing one send: $REPLICA_N messages, PostgreSQL $(basename "$(dirname "$pg_bin")"), $CONNS connections per replica, $REPLICA_RUNS runs each"
		echo
		echo "| replicas | median msg/s (send phase) | min | max |"
		echo "| ---: | ---: | ---: | ---: |"
		for r in 1 2 3; do
			read -r m mn mx _ < <(stats <"$res/replicas-$r.rates")
			printf '| %s | %.0f | %.0f | %.0f |\n' "$r" "$m" "$mn" "$mx"
		done
		echo
		echo '```'
		cat "$res/replicas-runs.txt"
		echo '```'
		echo
	} >>"$summary"
fi

# --- go test -bench ----------------------------------------------------------------
if want gotest; then
	log "gotest: go test -bench"
	benchtime=1s
	[ "$mode" = quick ] && benchtime=200ms
	(cd "$repo" && go test -run XXX -bench . -benchmem -benchtime "$benchtime" \
		./internal/digest/ ./internal/feed/ ./internal/store/ ./internal/mail/) >"$res/gotest-bench.txt" 2>&1 || log "go test -bench failed; see $res/gotest-bench.txt"
	{
		echo "## go test -bench (benchtime $benchtime)"
		echo
		echo '```'
		grep -E '^(Benchmark|ok|FAIL|pkg:|---)' "$res/gotest-bench.txt" || true
		echo '```'
		echo
	} >>"$summary"
fi

log "done: $summary"
cat "$summary"
