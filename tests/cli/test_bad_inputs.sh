#!/usr/bin/env bash
# The bad-input corpus (issue 11): generates tests/data/bad/ into a scratch directory, runs every
# broken input through its flm command (tests/data/bad/expected.tsv) and checks the exit status,
# the message fragment, that the message names the file and that nothing crashed (no signal, no
# sanitizer report). Then batch jobs mixing good and bad inputs: flm align over each importer's
# transcripts and over a manifest of every broken audio file (--max-bad 1: a mixed batch); the
# good input lands, each bad one is quarantined in the index with its reason.
# usage: test_bad_inputs.sh FLM_BINARY SOURCE_ROOT WORK_DIR
set -u
FLM=$1
BAD=$2/tests/data/bad
W=$3/bad.$$
. "$(dirname "$0")/tap.sh"
if ! command -v ffmpeg >/dev/null 2>&1; then echo "1..0 # SKIP ffmpeg not found"; exit 0; fi
rm -rf "$W"; mkdir -p "$W"; chmod 755 "$W"
trap 'chmod -R u+rwX "$W" 2>/dev/null; rm -rf "$W"' EXIT
export FLM_PROGRESS=0
D=$W/corpus
python3 "$BAD/make.py" "$D" "$FLM" >"$W/make.log" 2>&1
ok $? "make.py generates the corpus" || { cat "$W/make.log"; done_testing; exit 1; }

# crashed FILE: a sanitizer report or a crash message in FILE
crashed() { grep -qE 'Sanitizer|runtime error:|Segmentation fault|Aborted|core dumped' "$1"; }
# rejects REPORT: "FILE<TAB>REASON: DETAIL" lines of an align rejects report
rejects() {
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); print("%s\t%s: %s" % (r["file"], r["reason"], r["detail"]))' "$1"
}

n_rows=0; n_by_kind=""
declare -A frag_of kind_rows
while IFS=$'\t' read -r file cmd want frag; do
    case "$file" in '#'* | '') continue ;; esac
    n_rows=$((n_rows + 1))
    kind=${file%%/*}
    kind_rows[$kind]="${kind_rows[$kind]:+${kind_rows[$kind]} }$file"
    frag_of[$file]=$frag
    f=$D/$file
    o=$W/run/$n_rows
    mkdir -p "$o"
    cmd=${cmd//\{f\}/$f}; cmd=${cmd//\{d\}/$D}; cmd=${cmd//\{o\}/$o}
    frag=${frag//\{f\}/$f}; frag=${frag//\{d\}/$D}
    as=()
    if [ "${file##*/}" = unreadable.wav ] && [ "$(id -u)" = 0 ]; then
        # root reads anything: run this one as nobody where it can reach flm and the corpus
        if command -v runuser >/dev/null 2>&1 &&
            runuser -u nobody -- test -x "$FLM" -a -r "$D/good/speech.wav" 2>/dev/null; then
            as=(runuser -u nobody --); chmod 777 "$o"
        else
            n_rows=$((n_rows - 1)); _n=$((_n + 1))
            echo "ok $_n - $file # SKIP root, and user nobody cannot reach flm or the corpus"; continue
        fi
    fi
    rep=""
    read -ra args <<<"$cmd"
    "${as[@]}" "$FLM" "${args[@]}" </dev/null >"$o/out" 2>"$o/err"
    got=$?
    why=""
    [ "$got" = "$want" ] || why="$why; exit $got, expected $want"
    [ "$got" -lt 128 ] || why="$why; killed by signal $((got - 128))"
    crashed "$o/err" && why="$why; sanitizer/crash report"
    if [ "${cmd%% *}" = align ] && [ -e "$o/out.rejects.jsonl" ]; then
        # flm align goes on past a bad input; it exits 1 when nothing came out (removing OUT),
        # 3 when more than --max-bad of the inputs were rejected
        rep=$(rejects "$o/out.rejects.jsonl" 2>&1)
        printf '%s\n' "$rep" | grep -F -- "$f	" | grep -qF -- "$frag" ||
            why="$why; no reject of $f with '$frag'"
        if [ "$got" = 1 ]; then
            grep -qF "nothing produced" "$o/err" || why="$why; exit 1 without 'nothing produced'"
            [ -e "$o/out.jsonl" ] && why="$why; a run that produced nothing left $o/out.jsonl"
        fi
    else
        # flm index check lists the problems on stdout, then fails on stderr
        cat "$o/out" "$o/err" >"$o/all"
        grep -qF -- "$frag" "$o/all" || why="$why; '$frag' not in the output"
        grep -qF -- "$f" "$o/all" || why="$why; the message does not name $f"
        case "$cmd" in *" -o $o/"*)
            out=${cmd#* -o }; out=${out%% *}
            [ -e "$out" ] && why="$why; a failed run left $out behind" ;;
        esac
    fi
    _n=$((_n + 1))
    if [ -z "$why" ]; then echo "ok $_n - $file: $cmd"
    else
        echo "not ok $_n - $file: ${why#; }"; _failed=$((_failed + 1))
        sed 's/^/#   output: /' "$o/out" "$o/err" | head -5
        [ -f "$o/out.rejects.jsonl" ] && printf '%s\n' "${rep:-}" | sed 's/^/#   reject: /' | head -5
    fi
done <"$BAD/expected.tsv"
n_files=$(printf '%s\n' "${!frag_of[@]}" | wc -l)
[ "$n_files" -ge 60 ]; ok $? "at least 60 bad inputs ($n_files in $n_rows runs)"
python3 - "$D/index/other_schema_align/index.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
mode = db.execute("PRAGMA journal_mode").fetchone()[0]
sys.exit(0 if tables == ["songs"] and mode != "wal" else "tables %s, journal %s" % (tables, mode))
PY
ok $? "flm align --index on a foreign SQLite database leaves it untouched"
for k in $(printf '%s\n' "${!kind_rows[@]}" | sort); do
    diag "$k: $(printf '%s\n' ${kind_rows[$k]} | sort -u | wc -l) inputs"
done

# the checks behind those messages must not refuse good files that look alike
for g in float streamed_sox streamed_ffmpeg; do
    out=$("$FLM" audio convert "$D/good/$g.wav" -o "$W/$g.wav" 2>&1)
    like "$out" "24000 samples = 1.000 s" "good/$g.wav converts (1 s, not refused)"
done

# batch: each importer's good transcript with all its bad ones in one job, quarantined in an index
for fmt in whisper funasr srt vtt moshi; do
    b=$W/batch/$fmt
    mkdir -p "$b"
    ext=${kind_rows[$fmt]%% *}; ext=${ext##*.}
    cp "$D/good/$fmt.$ext" "$b/good.$ext"
    cp "$D/good/speech.wav" "$b/good.wav"
    for file in ${kind_rows[$fmt]}; do
        stem=${file##*/}; stem=${stem%.*}
        cp "$D/$file" "$b/$stem.$ext"
        cp "$D/good/speech.wav" "$b/$stem.wav"
    done
    "$FLM" align --from "$fmt" "$b"/*."$ext" -o "$b/out.jsonl" --index "$b/ds" --max-bad 1 >"$b/log" 2>&1
    rc=$?
    crashed "$b/log"; is "$rc:$?" "0:1" "$fmt batch: exit 0, no crash"
    good_id=good; [ "$fmt" = moshi ] && good_id=good.SPEAKER_MAIN
    grep -q "\"id\":\"$good_id\".*\"text\":\"Good morning.\"" "$b/out.jsonl"
    ok $? "$fmt batch: the good transcript lands"
    "$FLM" index quarantine "$b/ds" >"$b/q" 2>&1
    miss=""
    for file in ${kind_rows[$fmt]}; do
        stem=${file##*/}; stem=${stem%.*}
        bf=$b/$stem.$ext
        frag=${frag_of[$file]//\{f\}/$bf}
        grep -F -- "	$bf	align	" "$b/q" | grep -qF -- "$frag" || miss="$miss $stem"
    done
    is "${miss# }" "" "$fmt batch: each of the $(set -- ${kind_rows[$fmt]}; echo $#) bad transcripts is quarantined with its reason"
done

# batch: the good manifest and every bad one in one job (in place: their audio paths are relative)
b=$W/batch/jsonl
mkdir -p "$b"
set --
for file in ${kind_rows[jsonl]}; do set -- "$@" "$D/$file"; done
"$FLM" align --from jsonl "$D/good/jsonl.jsonl" "$@" -o "$b/out.jsonl" --index "$b/ds" --max-bad 1 >"$b/log" 2>&1
rc=$?
crashed "$b/log"; is "$rc:$?" "0:1" "jsonl batch: exit 0, no crash"
grep -q '"id":"good".*"text":"Good morning."' "$b/out.jsonl"; ok $? "jsonl batch: the good manifest lands"
"$FLM" index quarantine "$b/ds" >"$b/q" 2>&1
miss=""
for file in ${kind_rows[jsonl]}; do
    frag=${frag_of[$file]//\{f\}/$D/$file}; frag=${frag//\{d\}/$D}
    grep -F -- "	$D/$file	align	" "$b/q" | grep -qF -- "$frag" || miss="$miss ${file##*/}"
done
is "${miss# }" "" "jsonl batch: each bad manifest is quarantined with its reason"

# batch: one manifest naming every broken audio file (and one good line)
b=$W/batch/audio
mkdir -p "$b"
"$FLM" align --from jsonl "$D/jsonl/audio_batch.jsonl" -o "$b/out.jsonl" --index "$b/ds" --max-bad 1 >"$b/log" 2>&1
rc=$?
crashed "$b/log"; is "$rc:$?" "0:1" "audio batch: exit 0, no crash"
grep -q '"id":"good".*"text":"Hello there."' "$b/out.jsonl"; ok $? "audio batch: the good line lands"
is "$(wc -l <"$b/out.jsonl" | tr -d ' ')" 1 "audio batch: nothing else lands"
"$FLM" index quarantine "$b/ds" >"$b/q" 2>&1
miss=""; n_audio=0
for file in ${kind_rows[audio]}; do
    name=${file##*/}
    [ "$name" = unreadable.wav ] && [ "$(id -u)" = 0 ] && continue
    n_audio=$((n_audio + 1))
    reason=bad_audio; [ "$name" = missing.wav ] && reason=missing_audio
    frag=${frag_of[$file]}; [ "$name" = missing.wav ] && frag="not found"
    grep -qF -- "$reason: $D/jsonl/../audio/$name: $frag" "$b/q" || miss="$miss $name"
done
is "${miss# }" "" "audio batch: each of the $n_audio broken audio files is quarantined with flm_audio's message"
done_testing
