#!/usr/bin/env python3
"""Corpus maker and independent checker for `flm pack` tests (written from docs/pack.md and
DESIGN 3.1/3.2, not from the packer's code).

  packcheck.py make DIR --seed S [--utts N] [--bad]   synthetic corpus with precomputed codes
  packcheck.py silence DIR --flm FLM --codec MIMI     the codec's silence codes (flm codec encode)
  packcheck.py check DATASET --flm FLM --tokenizer TOK --recipe R --silence C0,..,C7
                     [--quarantined N] MANIFEST...       every invariant on every sample

`check` reads every sample with `flm inspect --json` and every sentence's tokens with
`flm tokenize`, and prints one JSON line of totals (samples, tts, asr) on success; on a
violation it prints what and where and exits 1.
"""
import argparse
import json
import os
import random
import subprocess
import sys

import numpy as np

WAIT, AUD_EMPTY, AUD_PAD = 151665, 2049, 2048
WORDS = ("the weather is lovely today and we should walk to the old harbour before it rains "
         "again because my sister said the ferry leaves at noon but nobody knows why").split()


def make(args):
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.dir, "codes"), exist_ok=True)
    lines = []
    for u in range(args.utts):
        uid = f"s{args.seed}u{u:04d}"
        corpus = rng.choice(["transcribed", "annotated"])
        lang = "en"
        t, sents = rng.randint(0, 5), []
        for _ in range(rng.randint(1, 4)):
            nf = rng.randint(3, 60)
            # a third of the sentences have more tokens than speech frames (text overruns)
            n_words = rng.randint(1, 4) if rng.random() < 0.66 else rng.randint(nf, nf + 20)
            text = " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."
            sents.append({"text": text, "start_frame": t, "end_frame": t + nf})
            t += nf + rng.randint(-1, 8)  # sentences may share one frame
        total = sents[-1]["end_frame"] + rng.randint(0, 10)
        codes = np.array([[rng.randrange(2048) for _ in range(total)] for _ in range(8)],
                         dtype=np.int32 if u % 3 else np.int64)
        np.save(os.path.join(args.dir, "codes", uid + ".npy"), codes)
        lines.append(json.dumps({"id": uid, "codes": f"codes/{uid}.npy", "corpus": corpus,
                                 "language": lang, "speaker": f"spk{u % 3}", "sentences": sents}))
    if args.bad:  # each broken line, with the stage `flm pack` must quarantine it under
        bad = [
            ('{"id": "bad-json", "codes": ', "parse"),
            ('{"id": "bad-key", "codes": "codes/x.npy", "sentence": []}', "parse"),
            ('{"id": "bad-missing", "codes": "codes/missing.npy", "sentences": '
             '[{"text": "Hi there.", "start_frame": 0, "end_frame": 5}]}', "codes"),
            ('{"id": "bad-order", "codes": "codes/x.npy", "sentences": '
             '[{"text": "Hi there.", "start_frame": 10, "end_frame": 15}, '
             '{"text": "Again.", "start_frame": 2, "end_frame": 6}]}', "parse"),
            ('{"id": "bad-short", "codes": "codes/short.npy", "sentences": '
             '[{"text": "Hi there.", "start_frame": 0, "end_frame": 50}]}', "frames"),
            ('{"id": "bad-range", "codes": "codes/range.npy", "sentences": '
             '[{"text": "Hi there.", "start_frame": 0, "end_frame": 5}]}', "codes"),
            ('{"id": "bad-npy", "codes": "codes/garbage.npy", "sentences": '
             '[{"text": "Hi there.", "start_frame": 0, "end_frame": 5}]}', "codes"),
            ('{"id": "bad-utf8", "codes": "codes/short.npy", "sentences": '
             '[{"text": "Caf\xe9.", "start_frame": 0, "end_frame": 5}]}', "parse"),
        ]
        np.save(os.path.join(args.dir, "codes", "short.npy"), np.zeros((8, 20), np.int32))
        np.save(os.path.join(args.dir, "codes", "range.npy"), np.full((8, 20), 2049, np.int32))
        with open(os.path.join(args.dir, "codes", "garbage.npy"), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00garbage")
        for i, (line, stage) in enumerate(bad):
            lines.insert(1 + 3 * i, line)
        with open(os.path.join(args.dir, "expected_quarantine.tsv"), "w") as f:
            for i, (line, stage) in enumerate(bad):
                f.write(f"{stage}\t{line[:40]}\n")
    with open(os.path.join(args.dir, "sentences.jsonl"), "wb") as f:
        for line in lines:
            f.write(line.encode("utf-8", "surrogateescape") if "\xe9" not in line
                    else line.encode("latin-1"))
            f.write(b"\n")


class Fail(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Fail(what)


def tokens_of(flm, tok, texts):
    out = subprocess.run([flm, "tokenize", "--tokenizer", tok, "--profile", "builtin",
                          "--no-added"], input="\n".join(texts) + "\n", capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return [[int(x) for x in line.split()] for line in out]


def encode(flm, codec, audio, out):
    subprocess.run([flm, "codec", "encode", audio, "-o", out, "--model", codec],
                   capture_output=True, check=True)
    return np.load(out)


def silence(args):
    """The codec's silence codes: the last of 25 frames of digital silence, encoded."""
    import wave
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "silence.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(b"\0\0" * 25 * 1920)
    codes = encode(args.flm, args.codec, path, os.path.join(args.dir, "silence.npy"))
    print(",".join(str(int(c)) for c in codes[:8, 24]))


def load_sentences(manifests, flm, codec, tmp):
    """utterance id -> (list of sentence dicts, codes [8][T], line); skips broken lines.
    Audio lines are encoded with `flm codec encode` (needs codec)."""
    utts = {}
    for m in manifests:
        base = os.path.dirname(m)
        with open(m, "rb") as f:
            for raw in f:
                try:
                    u = json.loads(raw.decode("utf-8"))
                    if "codes" in u:
                        codes = np.load(os.path.join(base, u["codes"]))
                    else:
                        codes = encode(flm, codec, os.path.join(base, u["audio"]),
                                       os.path.join(tmp, f"{len(utts)}.npy"))
                except Exception:
                    continue
                if not u["id"].startswith("bad-"):  # make's broken lines
                    utts[u["id"]] = (u["sentences"], codes, u)
    return utts


def check(args):
    recipe = json.load(open(args.recipe))
    pk = recipe["packing"]
    lead, lag, max_frames = pk["lead"], pk["lag"], pk["sample_frames"]
    silence = [int(x) for x in args.silence.split(",")]
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        utts = load_sentences(args.manifest, args.flm, args.codec, tmp)
    keys = [(uid, i) for uid, (ss, _, _) in utts.items() for i in range(len(ss))]
    toks = dict(zip(keys, tokens_of(args.flm, args.tokenizer,
                                    [utts[u][0][i]["text"] for u, i in keys])))
    rows = subprocess.run([args.flm, "index", "query", args.dataset,
                           "SELECT s.sample_key, sh.path, s.record FROM samples s JOIN shards sh "
                           "ON sh.id = s.shard_id ORDER BY s.sample_key"],
                          capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    seen, n_tts, n_asr = {}, 0, 0
    index_dir = args.dataset
    for row in rows:
        key, path, rec = row.split("\t")
        sample = json.loads(subprocess.run(
            [args.flm, "inspect", f"{os.path.join(index_dir, path)}:{rec}", "--json"],
            capture_output=True, text=True, check=True).stdout)
        where = f"sample {key}"
        tok = np.array(sample["tokens"], dtype=np.int64)
        cls = np.array(sample["loss_class"], dtype=np.int64)
        T = tok.shape[1]
        need(tok.shape[0] == 17 and T <= max_frames, f"{where}: shape {tok.shape}")
        style = sample["style"]
        need(style in ("tts", "asr"), f"{where}: style {style}")
        n_tts += style == "tts"
        n_asr += style == "asr"
        speech_ch = slice(1, 9) if style == "tts" else slice(9, 17)
        idle_ch = slice(9, 17) if style == "tts" else slice(1, 9)
        text_cov = np.zeros(T, bool)
        speech_cov = np.zeros(T, bool)
        layout = sample["metadata"]["pack.layout"].split("\n")
        prev_text_end, prev_speech_end, prev = 0, 0, None
        corpora, langs = set(), set()
        for entry in layout:
            ta, sa, pid = entry.split(" ", 2)
            ta, sa = int(ta), int(sa)
            uid, si = pid.rsplit("#", 1)
            si = int(si)
            need(uid in utts, f"{where}: unknown utterance {uid}")
            need((uid, si) not in seen, f"{where}: sentence {pid} also in {seen.get((uid, si))}")
            seen[(uid, si)] = key
            sents, codes, meta = utts[uid]
            corpora.add(meta.get("corpus"))
            langs.add(meta.get("language"))
            s = sents[si]
            want = toks[(uid, si)]
            nf = s["end_frame"] - s["start_frame"]
            if style == "tts":
                need(sa == ta + lead, f"{where}: {pid}: speech at {sa}, text at {ta}, lead {lead}")
            else:
                need(ta == sa + nf + lag, f"{where}: {pid}: text at {ta}, speech {sa}+{nf}")
            need(ta >= prev_text_end and sa >= prev_speech_end, f"{where}: {pid}: out of order")
            if prev and prev[0] == uid:
                need(si > prev[1], f"{where}: {pid}: sentences of {uid} out of order")
            prev = (uid, si)
            need(ta + len(want) <= T and sa + nf <= T, f"{where}: {pid} runs past the end")
            need(list(tok[0, ta:ta + len(want)]) == want, f"{where}: {pid}: text tokens differ")
            need((tok[speech_ch, sa:sa + nf] == codes[:8, s["start_frame"]:s["end_frame"]]).all(),
                 f"{where}: {pid}: speech codes differ")
            text_cov[ta:ta + len(want)] = True
            speech_cov[sa:sa + nf] = True
            prev_text_end, prev_speech_end = ta + len(want), sa + nf
        need(len(corpora) == 1 and len(langs) == 1, f"{where}: mixes {corpora} {langs}")
        need(sample["corpus"] in corpora, f"{where}: corpus {sample['corpus']}")
        need((tok[0, ~text_cov] == WAIT).all(), f"{where}: a non-sentence text position is not "
             "<wait>")
        sil = np.array(silence)[:, None]
        need((tok[speech_ch][:, ~speech_cov] == sil).all(), f"{where}: gap without silence codes")
        need((tok[idle_ch] == AUD_EMPTY).all(), f"{where}: idle channel not AUD_EMPTY")
        # loss classes from the tokens (DESIGN 3)
        want_cls = np.zeros_like(cls)
        want_cls[0] = np.where(tok[0] == WAIT, 4, 3)
        nonempty = (tok[1:9] != AUD_EMPTY) & (tok[1:9] != AUD_PAD)
        want_cls[1] = np.where(nonempty[0], 1, 0)
        want_cls[2:9] = np.where(nonempty[1:], 2, 0)
        need((cls == want_cls).all(), f"{where}: loss classes differ from the tokens")
        need(sample["metadata"]["pack.pairs"] == len(layout), f"{where}: pack.pairs")
    missing = [k for k in keys if k not in seen]
    if args.require_all:
        need(not missing, f"{len(missing)} sentences of good inputs are in no sample: "
             f"{missing[:5]}")
    print(json.dumps({"samples": len(rows), "tts": n_tts, "asr": n_asr,
                      "sentences": len(seen), "missing": len(missing)}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--utts", type=int, default=40)
    m.add_argument("--bad", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("dataset")
    c.add_argument("manifest", nargs="+")
    c.add_argument("--flm", required=True)
    c.add_argument("--tokenizer", required=True)
    c.add_argument("--recipe", required=True)
    c.add_argument("--silence", required=True)
    c.add_argument("--codec", help="Mimi checkpoint, for lines with audio instead of codes")
    c.add_argument("--require-all", action="store_true",
                   help="every sentence of every parsable line must be in a sample")
    s = sub.add_parser("silence")
    s.add_argument("dir")
    s.add_argument("--flm", required=True)
    s.add_argument("--codec", required=True)
    args = ap.parse_args()
    try:
        {"make": make, "check": check, "silence": silence}[args.cmd](args)
    except Fail as e:
        print(f"packcheck: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
