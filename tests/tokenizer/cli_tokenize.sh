#!/usr/bin/env bash
# End-to-end test of `flm tokenize` / `flm detokenize` (TAP). usage: cli_tokenize.sh FLM TOKENIZER_JSON
set -u
flm="$1"
tok="$2"
n=0
fail=0
ok() { # ok DESCRIPTION COND...
  local d="$1"; shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fail=1; fi
}
eq() { [ "$1" == "$2" ] || { echo "#   got : $(printf %q "$1")"; echo "#   want: $(printf %q "$2")"; return 1; }; }
has() { case "$1" in *"$2"*) return 0 ;; esac; echo "#   $(printf %q "$1") lacks $(printf %q "$2")"; return 1; }
export FLM_TOKENIZER="$tok"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

out="$(echo 'Hello world' | "$flm" tokenize)"
ok "tokenize ids" eq "$out" "9707 1879"
out="$(printf 'Hello world\n你好，世界！\n' | "$flm" tokenize --pieces)"
ok "tokenize --pieces" eq "$out" "$(printf 'Hello Ġworld\nä½łå¥½ ï¼Į ä¸ĸçķĮ ï¼ģ')"
out="$(printf 'DON%sT\n' "'" | "$flm" tokenize --tokenizer "$tok" --ids)"
ok "--tokenizer and --ids" eq "$out" "84641 17323"
printf 'fine\nab\xffcd\n' > "$tmp/bad.txt"
"$flm" tokenize "$tmp/bad.txt" > "$tmp/out" 2> "$tmp/err"
ok "invalid UTF-8 exits 1" eq "$?" 1
ok "error names file, line and byte offset" has "$(cat "$tmp/err")" "bad.txt:2: invalid UTF-8 at byte offset 2 (byte 0xff)"
out="$("$flm" tokenize --lossy "$tmp/bad.txt" | "$flm" detokenize)"
ok "--lossy replaces the bad byte by U+FFFD" eq "$out" "$(printf 'fine\nab\xef\xbf\xbdcd')"
out="$(printf 'a\n\nb\n' | "$flm" tokenize --whole)"
ok "--whole keeps the newlines" eq "$out" "64 271 65 198"
out="$(echo '151644 9707 151645' | "$flm" detokenize)"
ok "detokenize keeps special tokens" eq "$out" "<|im_start|>Hello<|im_end|>"
out="$(echo '151644, 9707,151645' | "$flm" detokenize --skip-special)"
ok "detokenize --skip-special (commas accepted)" eq "$out" "Hello"
echo '9707 999999' | "$flm" detokenize > /dev/null 2> "$tmp/err"
ok "unknown id exits 1" eq "$?" 1
ok "unknown id message" has "$(cat "$tmp/err")" "<stdin>:1: decode: id 999999 at index 1"
echo '9707 x1' | "$flm" detokenize > /dev/null 2> "$tmp/err"
ok "non-number exits 1 naming the column" has "$(cat "$tmp/err")" "<stdin>:1: column 6: expected a token id"
out="$(echo '<tool_response>' | "$flm" tokenize)"
ok "<tool_response> is one added token without a profile" eq "$out" "151665"
out="$(echo '<tool_response> <think>' | "$flm" tokenize --profile builtin)"
ok "--profile builtin: reserved ids never come out" bash -c "! grep -qwE '15166[567]' <<< '$out'"
out="$(echo '<|im_end|>' | "$flm" tokenize --no-added)"
ok "--no-added tokenizes added strings as text" eq "$out" "27 91 318 6213 91 29"
"$flm" tokenize --help > "$tmp/help"
ok "tokenize --help exits 0" eq "$?" 0
ok "tokenize --help shows usage" has "$(cat "$tmp/help")" "usage: flm tokenize [--ids | --pieces] [--tokenizer FILE]"
"$flm" detokenize --help | grep -q "skip-special"
ok "detokenize --help" eq "$?" 0
env -u FLM_TOKENIZER "$flm" tokenize < /dev/null 2> "$tmp/err"
ok "no tokenizer is a usage error (2)" eq "$?" 2
"$flm" tokenize --bogus < /dev/null > /dev/null 2>&1
ok "unknown option is a usage error (2)" eq "$?" 2
"$flm" tokenize --tokenizer /nonexistent.json < /dev/null 2> "$tmp/err"
ok "missing tokenizer file exits 1 naming it" has "$(cat "$tmp/err")" "/nonexistent.json: cannot open"
# round trip through both commands (input already NFC, no lone \r)
printf 'The quick brown fox.\n中文和English混合 123\n  indented\ttab  \n😀👨‍👩‍👧\n\n' > "$tmp/in.txt"
"$flm" tokenize "$tmp/in.txt" | "$flm" detokenize > "$tmp/rt.txt"
ok "tokenize | detokenize reproduces the file" cmp -s "$tmp/in.txt" "$tmp/rt.txt"
echo "1..$n"
exit $fail
