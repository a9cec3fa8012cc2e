#!/usr/bin/env bash
# flm index check on damage inside the index itself (issue 18, case 9): a dropped table, a
# sample's metadata that is not JSON, a damaged SQLite page, rows whose parents are gone; the
# --json documents of check and quarantine; control characters in the text output.
# usage: test_index_check.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/index_check.$$
. "$(dirname "$0")/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0
PY=python3

# 400 samples in 8 shards: an index of about 60 pages of 4 KiB
"$FLM" demo --synthetic --out "$W/d" --samples 400 --per-shard 50 --seed 7 >/dev/null
ok $? "demo dataset"
out=$("$FLM" index check "$W/d"); ok $? "the fresh dataset checks clean"
like "$out" "OK, 400 samples verified" "all 400 samples"
fresh() { rm -rf "$W/$1"; cp -r "$W/d" "$W/$1"; }
# every line of a check's stdout is an ERROR line or the summary line
lines_ok() { printf '%s\n' "$1" | grep -vc -e '^ERROR ' -e ': [0-9]* error(s): ' -e ': OK, '; }

# ---- (a) a dropped table ----------------------------------------------------------------------
fresh drop
sqlite3 "$W/drop/index.sqlite" "DROP TABLE events"; ok $? "drop the events table"
out=$("$FLM" index check "$W/drop" 2>&1); is $? 1 "check fails on a dropped table"
like "$out" 'ERROR index .*drop/index.sqlite: schema: table "events" is missing' "naming the table"
fresh col
sqlite3 "$W/col/index.sqlite" "ALTER TABLE samples DROP COLUMN n_listen"; ok $? "drop a column"
out=$("$FLM" index check "$W/col" 2>&1); is $? 1 "check fails on a dropped column"
like "$out" 'table "samples" has no column "n_listen"' "naming table and column"
fresh idx
sqlite3 "$W/idx/index.sqlite" "DROP INDEX events_by_kind"; ok $? "drop an index"
out=$("$FLM" index check "$W/idx" 2>&1); is $? 1 "check fails on a dropped index"
like "$out" 'index "events_by_kind" is missing' "naming it"
fresh ref
sqlite3 "$W/ref/index.sqlite" "DELETE FROM shards WHERE path = 'shards/000002.flms'"
out=$("$FLM" index check "$W/ref" 2>&1); is $? 1 "check fails on samples whose shard row is gone"
like "$out" "50 row(s) of samples refer to rows of shards that do not exist" "counting them"

# ---- (b) metadata that is not a JSON object ---------------------------------------------------
fresh meta
sqlite3 "$W/meta/index.sqlite" "UPDATE samples SET metadata = '{not json' WHERE sample_key = 'synthetic/7/000123';
  UPDATE samples SET metadata = '[1, 2]' WHERE sample_key = 'synthetic/7/000321'"
ok $? "break the metadata of two samples"
out=$("$FLM" index check "$W/meta" 2>&1); is $? 1 "check fails on metadata that is not JSON"
like "$out" "ERROR sample synthetic/7/000123: metadata is not JSON: string or '}' expected near 'not'" \
    "naming the sample key and the parser's reason"
like "$out" "ERROR sample synthetic/7/000321: metadata is not a JSON object: \[1, 2\]" \
    "a JSON array is not an object either"
like "$out" ": 2 error(s)" "two errors"
out=$("$FLM" index stats "$W/meta" 2>&1); is $? 1 "stats fails on metadata that is not JSON"
like "$out" "sample synthetic/7/000123: metadata is not JSON" "naming the sample"

# ---- (c) a damaged page of the SQLite file ----------------------------------------------------
# the middle leaf page of the samples table: overwrite 512 bytes in its middle
fresh page
pages=$(sqlite3 "$W/page/index.sqlite" "SELECT pageno FROM dbstat WHERE name = 'samples' AND pagetype = 'leaf' ORDER BY pageno")
pg=$(printf '%s\n' $pages | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
is "$(printf '%s\n' $pages | wc -l | awk '$1 >= 5 {print "many"}')" many "the samples table spans several pages (page $pg is in the middle)"
$PY -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek((int(sys.argv[2]) - 1) * 4096 + 2048); f.write(b'\xab' * 512)" \
    "$W/page/index.sqlite" "$pg"
ok $? "overwrite the middle of page $pg"
[ "$(sqlite3 "$W/page/index.sqlite" "PRAGMA quick_check" 2>&1)" != ok ]; ok $? "(SQLite sees the damage)"
out=$("$FLM" index check "$W/page" 2>&1); is $? 1 "check fails on a damaged page"
like "$out" "ERROR index .*page/index.sqlite: database corruption: On tree page $pg " \
    "saying the database is corrupt, naming the page"
like "$out" "database corruption: reading the samples of shard" "and what it could not read"
n=$(printf '%s\n' "$out" | grep -c "is not in the index"); is "$n" 0 "not as records missing from the index"
# an index b-tree: today's check does not notice it at all
fresh ipage
pg=$(sqlite3 "$W/ipage/index.sqlite" "SELECT max(pageno) FROM dbstat WHERE name = 'samples_by_corpus' AND pagetype = 'leaf'")
$PY -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek((int(sys.argv[2]) - 1) * 4096 + 1024); f.write(b'\xff' * 2048)" \
    "$W/ipage/index.sqlite" "$pg"
out=$("$FLM" index check "$W/ipage" 2>&1); is $? 1 "check fails on a damaged page of an SQL index"
like "$out" "database corruption: .*page $pg" "saying so"

# ---- (d) --json -------------------------------------------------------------------------------
touch "$W/d/shards/000009.flms.tmp-1-0"
out=$("$FLM" index check "$W/d" --json); ok $? "check --json of a clean dataset exits 0"
got=$(printf '%s' "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(sorted(d), d["ok"], d["samples_verified"], d["errors"], len(d["notes"]), "temporary file" in d["notes"][0])')
is "$got" "['errors', 'index', 'notes', 'ok', 'samples_verified'] True 400 [] 1 True" \
    "one document: ok, 400 samples, no errors, the leftover as a note"
rm "$W/d/shards/000009.flms.tmp-1-0"
out=$("$FLM" index check "$W/meta" --json); is $? 1 "check --json of a damaged dataset exits 1"
got=$(printf '%s' "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(d["ok"], len(d["errors"]), [e.split(":")[0] for e in d["errors"]])')
is "$got" "False 2 ['sample synthetic/7/000123', 'sample synthetic/7/000321']" "ok false, each error naming its sample"
out=$("$FLM" index check "$W/page" --json --quiet); is $? 1 "check --json --quiet of a corrupt index"
got=$(printf '%s' "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(d["ok"], any("database corruption: On tree page" in e for e in d["errors"]))')
is "$got" "False True" "the corruption is in the errors"
out=$("$FLM" index check "$W/nowhere" --json 2>/dev/null); is $? 1 "check --json of a missing index"
got=$(printf '%s' "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(d["ok"], "not found" in d["errors"][0])')
is "$got" "False True" "still one document, saying why"

# ---- (e) control characters in paths and messages ---------------------------------------------
# a manifest whose file name holds a newline and a tab, naming a missing audio file (whose name
# holds them too): flm align quarantines it (its exit status, with nothing produced, is not what
# this tests)
mkdir -p "$W/al"
bad=$'bad\nname\t.jsonl'
printf '{"id": "b", "audio": "audio/no\\nwhere\\t\\u001b.wav", "text": "Missing audio."}\n' >"$W/al/$bad"
"$FLM" align --from jsonl "$W/al/$bad" -o "$W/al/out.jsonl" --index "$W/al/ds" >/dev/null 2>&1
out=$("$FLM" index quarantine "$W/al/ds"); ok $? "quarantine lists it"
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" 1 "on one line"
is "$(printf '%s\n' "$out" | awk -F'\t' '{print NF}')" 4 "of 4 tab-separated fields"
is "$(printf '%s\n' "$out" | cut -f2)" "$W/al/"'bad\nname\t.jsonl' "the path with visible escapes"
like "$(printf '%s\n' "$out" | cut -f4)" 'audio/no\\nwhere\\t\\x1b.wav: not found' "the message too"
out=$("$FLM" index quarantine "$W/al/ds" --json); ok $? "quarantine --json"
got=$(printf '%s' "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
q = d[0]
print(len(d), sorted(q), q["path"].endswith("/al/bad\nname\t.jsonl"), q["stage"], q["error"].endswith("audio/no\nwhere\t\x1b.wav: not found"))')
is "$got" "1 ['error', 'key', 'path', 'stage'] True align True" "holds key, path, stage and error, unescaped"
# a shard path with a newline (hand-edited): each ERROR stays on one line
fresh nl
sqlite3 "$W/nl/index.sqlite" "UPDATE shards SET path = 'shards/00' || char(10) || '0001.flms' WHERE path = 'shards/000001.flms'"
out=$("$FLM" index check "$W/nl" 2>/dev/null); is $? 1 "check fails on a shard path that names no file"
like "$out" 'ERROR .*shards/00\\n0001.flms: cannot open' "the path escaped in the message"
is "$(lines_ok "$out")" 0 "every line is an ERROR line or the summary"

rm -rf "$W"
done_testing
