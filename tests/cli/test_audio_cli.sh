#!/bin/sh
# End-to-end checks of `flm audio convert` and `flm augment` (TAP). Usage: test_audio_cli.sh FLM
flm="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
dir=$(mktemp -d "${TMPDIR:-/tmp}/flm-cli-audio-XXXXXX")
trap 'rm -rf "$dir"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
if ! command -v ffmpeg >/dev/null 2>&1; then echo "1..0 # SKIP ffmpeg not found"; exit 0; fi

ffmpeg -nostdin -v error -f lavfi -i sine=f=300:r=44100:d=1.5 -ac 2 -c:a libmp3lame "$dir/in.mp3"
ffmpeg -nostdin -v error -f lavfi -i sine=f=500:r=16000:d=1.5 -c:a pcm_s16le "$dir/speak.wav"
mkdir "$dir/noise"
ffmpeg -nostdin -v error -f lavfi -i anoisesrc=r=24000:d=0.4 -c:a flac "$dir/noise/a.flac"
ffmpeg -nostdin -v error -f lavfi -i anoisesrc=r=8000:d=0.3:c=pink "$dir/noise/b.wav"

"$flm" audio convert --help | grep -q "usage: flm audio convert"; ok $? "audio convert --help"
out=$("$flm" audio convert "$dir/in.mp3" -o "$dir/out.wav"); ok $? "convert mp3 -> wav"
echo "$out" | grep -q "36000 samples = 1.500 s = 19 frames of 1920 samples"; ok $? "prints exact samples and frames"
ffprobe -v error -show_entries stream=sample_rate,channels,codec_name -of csv=p=0 "$dir/out.wav" | grep -q "pcm_f32le,24000,1"
ok $? "output is 24 kHz mono float32 wav (ffprobe)"
"$flm" audio convert "$dir/in.mp3" -o "$dir/out.flac" --format flac --per-channel >/dev/null
ffprobe -v error -show_entries stream=sample_rate,channels,codec_name -of csv=p=0 "$dir/out.flac" | grep -q "flac,24000,2"
ok $? "--format flac --per-channel: 2-channel flac"
cp "$dir/in.mp3" "$dir/concat:in.mp3"
(cd "$dir" && "$flm" audio convert "concat:in.mp3" -o "http:out.flac" --format flac >/dev/null) && [ -s "$dir/http:out.flac" ]
ok $? "file names that look like FFmpeg protocols are plain files"
echo "not audio" > "$dir/bad.mp3"
err=$("$flm" audio convert "$dir/bad.mp3" -o "$dir/x.wav" 2>&1); rc=$?
[ $rc = 1 ] && echo "$err" | grep -q "bad.mp3: not a recognized audio/video file"; ok $? "broken input: exit 1, readable error"
[ ! -e "$dir/x.wav" ]; ok $? "no partial output left behind"
"$flm" audio convert "$dir/in.mp3" 2>/dev/null; [ $? = 2 ]; ok $? "missing -o: usage error (exit 2)"

"$flm" augment --help | grep -q "usage: flm augment"; ok $? "augment --help"
"$flm" augment "$dir/out.wav" --speak "$dir/speak.wav" --noise "$dir/noise" -o "$dir/a1.wav" --seed 7 --print-params > "$dir/p1.txt"
ok $? "augment runs"
"$flm" augment "$dir/out.wav" --speak "$dir/speak.wav" --noise "$dir/noise" -o "$dir/a2.wav" --seed 7 --print-params > "$dir/p2.txt"
cmp -s "$dir/a1.wav" "$dir/a2.wav" && cmp -s "$dir/p1.txt" "$dir/p2.txt"; ok $? "same seed: identical output and parameters"
"$flm" augment "$dir/out.wav" --speak "$dir/speak.wav" --noise "$dir/noise" -o "$dir/a3.wav" --seed 8 >/dev/null
! cmp -s "$dir/a1.wav" "$dir/a3.wav"; ok $? "another seed: different output"
grep -q "^aug.noise_plan=0+" "$dir/p1.txt" && grep -q "^aug.echo_delay_s=" "$dir/p1.txt" && grep -q "^aug.seed=7$" "$dir/p1.txt"
ok $? "--print-params lists the drawn parameters"
err=$("$flm" augment "$dir/out.wav" -o "$dir/y.wav" --noise "$dir/nowhere" 2>&1); rc=$?
[ $rc = 1 ] && echo "$err" | grep -q "nowhere"; ok $? "missing noise pool: exit 1, names the path"
"$flm" augment "$dir/out.wav" -o "$dir/y.wav" --p-echo 2 2>&1 | grep -q "p_echo = 2"; ok $? "bad probability rejected with its name"
"$flm" augment "$dir/out.wav" --speak "$dir/speak.wav" -o "$dir/y.wav" --param p_echo=1 --param echo_gain_lo=0.1 --print-params | grep -q "^aug.echo=1$"
ok $? "--param sets recipe parameters"
"$flm" augment "$dir/out.wav" -o "$dir/y.wav" --param p_ech=1 2>&1 | grep -q "unknown parameter 'p_ech'"; ok $? "--param with an unknown key is rejected"
echo "1..$n"
[ $fails = 0 ]
