#!/usr/bin/env bash
# End-to-end tests of the flm command: demo, inspect, index stats/check/merge/locate, bad inputs.
# usage: test_cli.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/cli.$$
. "$(dirname "$0")/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0

out=$("$FLM" --help); ok $? "flm --help exits 0"
like "$out" "inspect" "help lists inspect"
"$FLM" frobnicate >/dev/null 2>&1; is $? 2 "unknown command exits 2"
out=$("$FLM" demo --synthetic --samples 2>&1); is $? 2 "missing option value is a usage error"
like "$out" "needs a value" "and says so"
out=$("$FLM" demo --synthetic --samples -3 2>&1); is $? 2 "bad option value"
like "$out" "expected an integer" "is explained"

# ---- one grammar (issue 20): every command and subcommand through the same table-driven parser --
SRC=$(dirname "$0")/../..
subcommands() { # the subcommands of a command (none: the command itself takes the options)
    case $1 in
    audio) echo convert ;; codec) echo encode decode ;; recipe) echo check ;;
    model) echo init info quantize ;;
    index) echo stats check merge quarantine locate migrate query report ;;
    esac
}
all=()
for c in $(sed -n 's/^FLM_COMMAND("\([a-z]*\)".*/\1/p' "$SRC/bin/commands.def"); do
    subs=$(subcommands "$c")
    if [ -z "$subs" ]; then all+=("$c"); continue; fi
    help=$("$FLM" "$c" --help); ok $? "flm $c --help"
    for s in $subs; do
        all+=("$c $s")
        like "$help" "$s" "flm $c --help names $s"
    done
    "$FLM" "$c" >/dev/null 2>&1; is $? 2 "flm $c without a subcommand is a usage error"
    err=$("$FLM" "$c" --no-such-thing 2>&1 >/dev/null); is $? 2 "flm $c --no-such-thing: exit 2"
    is "$err" "flm: $c: unknown subcommand '--no-such-thing'
see flm $c --help" "flm $c: an unknown subcommand in two lines"
done
is "${#all[@]}" 26 "26 commands and subcommands (bin/commands.def and their subcommands)"
# The options of a --help: "NAMES [ARG]" per line, names comma-separated ("-o, --out OUT").
help_options() {
    awk '/^options:$/ { on = 1; next } on && /^  -/ { sub(/^  /, ""); split($0, h, "  ");
        print h[1] }' | sed 's/, /,/'
}
n_opts=0 opts_seen=" "
for cmd in "${all[@]}"; do
    # shellcheck disable=SC2086
    help=$("$FLM" $cmd --help); ok $? "flm $cmd --help exits 0"
    like "$help" "^usage: flm " "flm $cmd --help: a synopsis"
    # shellcheck disable=SC2086
    err=$("$FLM" $cmd --no-such-option </dev/null 2>&1 >/dev/null); is $? 2 "flm $cmd --no-such-option: exit 2"
    is "$err" "flm: $cmd: unknown option '--no-such-option'
see flm $cmd --help" "flm $cmd: an unknown option in exactly two lines"
    has=0; printf '%s\n' "$help" | grep -q '^options:$' && has=1
    case $cmd in
    version | "recipe check" | "index migrate" | "index locate") is $has 0 "flm $cmd takes no options" ;;
    *) is $has 1 "flm $cmd --help lists its options" ;;
    esac
    while read -r names arg; do
        n_opts=$((n_opts + 1))
        long=${names##*,}
        opts_seen="$opts_seen $cmd:${names//,/ $cmd:} "
        if [ -z "$arg" ]; then # a flag: known, and takes no value
            # shellcheck disable=SC2086
            err=$("$FLM" $cmd "$long" --no-such-option </dev/null 2>&1 >/dev/null)
            is "$err" "flm: $cmd: unknown option '--no-such-option'
see flm $cmd --help" "flm $cmd $long is a known flag"
            case $long in --*)
                # shellcheck disable=SC2086
                err=$("$FLM" $cmd "$long=1" </dev/null 2>&1 >/dev/null); is $? 2 "flm $cmd $long=1: exit 2"
                like "$err" "^flm: $cmd: option $long takes no value" "and says so" ;;
            esac
            continue
        fi
        # shellcheck disable=SC2086
        err=$("$FLM" $cmd "$long" </dev/null 2>&1 >/dev/null); is $? 2 "flm $cmd $long (no value): exit 2"
        is "$err" "flm: $cmd: option $long needs a value ($arg)
see flm $cmd --help" "flm $cmd $long: the missing value named in two lines"
        # shellcheck disable=SC2086
        sep=$("$FLM" $cmd "$long" zz --no-such-option </dev/null 2>&1 >/dev/null)
        is "$sep" "flm: $cmd: unknown option '--no-such-option'
see flm $cmd --help" "flm $cmd $long VALUE takes the value"
        case $long in --*)
            # shellcheck disable=SC2086
            joined=$("$FLM" $cmd "$long=zz" --no-such-option </dev/null 2>&1 >/dev/null)
            is "$joined" "$sep" "flm $cmd $long=VALUE is $long VALUE" ;;
        esac
    done < <(printf '%s\n' "$help" | help_options | sed 's/ \([^ ]*\)$/ \1/')
done
[ "$n_opts" -ge 130 ]; ok $? "the option tables hold $n_opts options"
# Every option in a command's table is in its --help: the names the sources give the parser
# (CLI_OPT / CLI_FLAG / CLI_LIST, the shared CLI_OPT_* entries, cli_parse_model) against the
# help's lists.
for f in "$SRC"/bin/cmd_*.c; do
    base=$(basename "$f" .c); base=${base#cmd_}
    case $base in tokenize) pat='\(tokenize\|detokenize\)' ;; codec) pat='\(codec\|render\)' ;;
        *) pat=$base ;; esac
    names=$(grep -o 'CLI_\(OPT\|FLAG\|LIST\)("[^"]*"' "$f" | sed 's/.*("//; s/"$//; s/, /\n/g'
        grep -o 'CLI_OPT_[A-Z]*\|CLI_MODEL_OPTIONS\|cli_parse_model' "$f" | while read -r m; do
            case $m in CLI_OPT_CODEC) echo --codec ;; CLI_OPT_MODEL) echo --model ;;
            CLI_OPT_WEIGHTS) echo --weights ;; CLI_OPT_MMAP) echo --mmap ;;
            CLI_OPT_THREADS) echo --threads ;;
            CLI_MODEL_OPTIONS | cli_parse_model) printf -- '--model\n--weights\n--mmap\n--threads\n' ;;
            esac
        done)
    missing=""
    for n in $names; do
        printf '%s' "$opts_seen" | grep -q -- " $pat[a-z ]*:$n " || missing="$missing $n"
    done
    is "$missing" "" "every option of bin/cmd_$base.c is in the --help of its command"
done
# The same option with '=' and with a separate value does the same thing.
"$FLM" demo --synthetic --out="$W/eq" --samples=3 --per-shard=2 --seed=9 >"$W/eq.txt"; ok $? "demo with --key=value"
"$FLM" demo --synthetic --out "$W/sp" --samples 3 --per-shard 2 --seed 9 >"$W/sp.txt"; ok $? "demo with --key value"
is "$(sed "s|$W/eq|DIR|g" "$W/eq.txt")" "$(sed "s|$W/sp|DIR|g" "$W/sp.txt")" "--key=value and --key value: the same run"
is "$("$FLM" index query "$W/eq" 'SELECT count(*) FROM samples' --json)" '[{"count(*)":3}]' "3 samples either way"

out=$("$FLM" demo --synthetic --out "$W/a" --samples 40 --per-shard 8 --seed 3); ok $? "demo builds a dataset"
like "$out" "40 samples in 5 shards (0 already done)" "demo summary"
like "$out" "by corpus:" "demo prints stats"
like "$out" "speak0" "demo prints a timeline"
out=$("$FLM" demo --synthetic --out "$W/a" --samples 40 --per-shard 8 --seed 3); ok $? "demo again"
like "$out" "(5 already done)" "a finished demo is not redone"
out=$("$FLM" index check "$W/a"); ok $? "index check of a fresh dataset passes"
like "$out" "OK, 40 samples verified" "check reports the count"

out=$("$FLM" index stats "$W/a" --json); ok $? "stats --json"
n=$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["total"]["samples"], sum(g["samples"] for g in d["corpus"]))')
is "$n" "40 40" "stats JSON totals agree"

loc=$("$FLM" index locate "$W/a" synthetic/3/000011); ok $? "locate"
is "$loc" "$W/a/shards/000001.flms:3" "sample 11 is record 3 of shard 1"
out=$("$FLM" inspect "$loc" --json); ok $? "inspect one sample as JSON"
chk=$(printf '%s' "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin)
t=d["tokens"]; c=d["loss_class"]
ok = len(t)==17 and len(c)==17 and all(len(r)==d["n_frames"] for r in t+c)
wait = all((c[0][i]==4) == (t[0][i]==151665) for i in range(d["n_frames"]))
print(d["id"], ok, wait)')
is "$chk" "synthetic/3/000011 True True" "JSON: 17 rows of n_frames, wait classes match tokens"
out=$("$FLM" inspect "$W/a" --sample synthetic/3/000011 --from 5 --frames 4 --classes); ok $? "inspect by key"
like "$out" "frames 5..8" "window as asked"
like "$out" "loss classes" "class view"
out=$("$FLM" inspect "$W/a/shards/000002.flms"); ok $? "inspect a shard"
like "$out" "records   8" "record count"
out=$("$FLM" inspect "$W/a/shards/000002.flms:99" 2>&1); is $? 1 "record out of range fails"
like "$out" "record 99 out of range" "and says so"
out=$("$FLM" inspect "$W/nope.flms" 2>&1); is $? 1 "missing shard fails"
like "$out" "nope.flms: cannot open" "naming the file"
printf 'hello, not a shard at all, just some text....................................' > "$W/garbage.flms"
out=$("$FLM" inspect "$W/garbage.flms" 2>&1); is $? 1 "garbage shard fails"
like "$out" "not a flmstream shard" "with the reason"

# merge two datasets built apart
"$FLM" demo --synthetic --out "$W/b" --samples 12 --per-shard 5 --seed 4 >/dev/null; ok $? "second dataset"
out=$("$FLM" index merge "$W/a" "$W/b" -o "$W/merged"); ok $? "merge into a new directory"
out=$("$FLM" index merge "$W/a" "$W/b" -o "$W/merged" 2>&1); is $? 1 "merge never overwrites an index"
like "$out" "already exists" "and says so"
out=$("$FLM" index check "$W/merged"); ok $? "merged index checks clean"
like "$out" "OK, 52 samples verified" "merged holds both"
out=$("$FLM" index merge "$W/a" "$W/a" -o "$W/dup.sqlite" 2>&1); is $? 1 "merging a dataset with itself fails"
like "$out" "also in an earlier input" "naming the duplicate"

# damage behind the index's back
cp -r "$W/a" "$W/c"
printf '\x42' | dd of="$W/c/shards/000003.flms" bs=1 seek=5000 conv=notrunc 2>/dev/null
out=$("$FLM" index check "$W/c" 2>&1); is $? 1 "check fails on a flipped byte"
like "$out" "000003.flms: record 0: checksum mismatch" "naming shard and record"
rm "$W/c/shards/000001.flms"
out=$("$FLM" index check "$W/c" 2>&1); is $? 1 "check fails on a deleted shard"
like "$out" "000001.flms: cannot open" "naming it"
cp "$W/b/shards/000000.flms" "$W/c/shards/000004.flms"
out=$("$FLM" index check "$W/c" 2>&1)
like "$out" "000004.flms: holds 5 records, the index says 8" "a swapped shard is caught"

# recipes
out=$("$FLM" recipe check "$(dirname "$0")/../../schemas/recipes/post-training-2.json"); ok $? "shipped recipe validates"
like "$out" "transcribed x0.5" "and shows the corpus weights"
printf '{"kind":"recipe","name":"x","stage":"s","packing":{"lead":5}}' > "$W/bad-recipe.json"
out=$("$FLM" recipe check "$W/bad-recipe.json" 2>&1); is $? 1 "a bad recipe fails"
like "$out" "bad-recipe.json: key \"packing.lead\": expected an integer in \[0, 2\]" "naming file and key"
out=$("$FLM" recipe check "$(dirname "$0")/../../schemas/recipes/fine-tuning-2.json"); ok $? "fine-tuning-2 validates"
like "$out" "formats: rtts 0.50, rtts-free 0.50" "with its dialog formats"
like "$out" "interruptions p 0.70, reaction 0.50 s" "interruption settings"
like "$out" "p_echo 0.3, echo gain 0..0.2, delay 0.1..0.5 s" "and echo leakage"
printf '{"kind":"recipe","name":"x","stage":"s","augmentation":{"p_ech":0.3}}' > "$W/bad-recipe.json"
out=$("$FLM" recipe check "$W/bad-recipe.json" 2>&1); is $? 1 "an unknown augmentation key fails"
like "$out" "bad-recipe.json: key \"augmentation.p_ech\": augment: unknown parameter" "naming it"
printf '{"kind":"recipe","name":"x","stage":"s","augmentation":{"p_echo":3}}' > "$W/bad-recipe.json"
out=$("$FLM" recipe check "$W/bad-recipe.json" 2>&1); is $? 1 "an augmentation value out of range fails"
like "$out" "bad-recipe.json: augmentation: .*p_echo" "naming it"

done_testing
