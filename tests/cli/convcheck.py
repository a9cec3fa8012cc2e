#!/usr/bin/env python3
"""Stereo conversations for `flm pack` tests (issue 21, item 2), and an independent checker
written from docs/conversations.md, not from the packer.

  convcheck.py make DIR          espeak-ng two-speaker call, stereo (left: agent, right: caller),
                                 with a planted interrupt and back-channel; moshi-finetune's
                                 manifest + word alignments, the same as a Lhotse MultiCut
                                 (cuts.jsonl); DIR/truth.json: the planted times
  convcheck.py check DATASET --flm FLM --tokenizer TOK --codec MIMI --recipe R --aligned A.jsonl
                 --stereo S24.wav [--exact-listen]
                                 every sample against the rules; prints one JSON line
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import wave

import numpy as np

RATE = 22050  # espeak-ng's rate; flm decodes and resamples
SPF, SR = 1920, 24000
WAIT, AUD_EMPTY = 151665, 2049

# (speaker, text, start time rule) -- "after": seconds after the previous turn's speech ends;
# "under": seconds after the onset of the given earlier turn (an overlap)
TURNS = [
    ("A", "Hello, thanks for calling the support line.", ("after", 0.3)),
    ("B", "Hi, my internet connection keeps dropping every evening.", ("after", 0.4)),
    ("A", "I am sorry to hear that. Let me check the line status for your address right now.",
     ("after", 0.5)),
    ("B", "Actually, I think it is the wireless router.", ("under", 2, 1.2)),  # interrupt
    ("A", "I see. Please restart the router and wait two full minutes before you test it.",
     ("after", 0.4)),
    ("B", "Yes.", ("under", 4, 1.0)),  # back-channel
    ("B", "Thank you, that fixed it.", ("after_turn", 4, 0.5)),
    ("A", "Great, have a nice evening.", ("after", 0.3)),
]
YIELD_AFTER = 0.48  # the agent stops this long after the caller's interrupting onset


def espeak(text, voice, path):
    subprocess.run(["espeak-ng", "-v", voice, "-w", path, text], check=True)
    with wave.open(path) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768
    loud = np.nonzero(np.abs(x) > 0.02)[0]  # trim espeak's own leading/trailing silence
    return x[loud[0]:loud[-1] + 1]


def make(args):
    os.makedirs(args.dir, exist_ok=True)
    clips = [espeak(t, "en-us" if s == "A" else "en-gb+f3", os.path.join(args.dir, f"t{i}.wav"))
             for i, (s, t, _) in enumerate(TURNS)]
    on, off = [0.0] * len(TURNS), [0.0] * len(TURNS)
    prev_end = 0.0
    for i, (s, text, rule) in enumerate(TURNS):
        if rule[0] == "after":
            on[i] = prev_end + rule[1]
        elif rule[0] == "under":
            on[i] = on[rule[1]] + rule[2]
        else:
            on[i] = off[rule[1]] + rule[2]
        off[i] = on[i] + len(clips[i]) / RATE
        if rule[0] != "under":
            prev_end = max(prev_end, off[i])
        if i == 3:  # the agent yields: its turn 2 stops YIELD_AFTER after the caller's onset
            cut = on[3] + YIELD_AFTER
            n2 = int((cut - on[2]) * RATE)
            full2 = len(clips[2]) / RATE
            clips[2] = clips[2][:n2] * np.concatenate([np.ones(n2 - 200), np.linspace(1, 0, 200)])
            off[2] = cut
            prev_end = off[3]
    assert off[5] - on[5] < 0.45 and off[5] < off[4], (on, off)  # "Yes." is a back-channel
    total = max(off) + 0.6
    st = np.zeros((int(total * RATE), 2))
    for i, (s, _, _) in enumerate(TURNS):
        a = int(on[i] * RATE)
        st[a:a + len(clips[i]), 0 if s == "A" else 1] += clips[i]
    pcm = (np.clip(st, -1, 1) * 32767).astype(np.int16)
    with wave.open(os.path.join(args.dir, "call.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    # moshi-finetune: alignments of every word, times spread over each turn by letters
    al, turn_words = [], []
    for i, (s, text, _) in enumerate(TURNS):
        words = text.split()
        if i == 2:  # what the agent said before it stopped
            keep = max(1, round(len(words) * (off[2] - on[2]) / full2))
            words = words[:keep]
        weights = np.array([len(w) + 1 for w in words], float)
        span = (off[i] - on[i]) if i != 2 else full2 * sum(weights) / sum(len(w) + 1 for w in text.split())
        edges = on[i] + np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * span
        spk = "SPEAKER_MAIN" if s == "A" else "SPEAKER_1"
        turn_words.append([])
        for k, w in enumerate(words):
            al.append([w, [round(edges[k], 3), round(edges[k + 1], 3)], spk])
            turn_words[-1].append(al[-1])
    # the same call as a Lhotse MultiCut: one supervision per turn on its speaker's channel
    sups = []
    for i, (s, text, _) in enumerate(TURNS):
        words = [w for w, _, _ in turn_words[i]]
        sups.append({"id": f"call-t{i}", "recording_id": "call", "start": round(on[i], 3),
                     "duration": round(off[i] - on[i], 3), "channel": 0 if s == "A" else 1,
                     "text": " ".join(words), "speaker": s})
    rec = {"id": "call", "sources": [{"type": "file", "channels": [0, 1], "source": "call.wav"}],
           "sampling_rate": RATE, "num_samples": len(st), "duration": round(len(st) / RATE, 3),
           "channel_ids": [0, 1]}
    cut = {"id": "call", "start": 0.0, "duration": rec["duration"], "channel": [0, 1],
           "supervisions": sups, "recording": rec, "type": "MultiCut"}
    with open(os.path.join(args.dir, "cuts.jsonl"), "w") as f:
        f.write(json.dumps(cut) + "\n")
    al.sort(key=lambda e: e[1][0])
    json.dump({"alignments": al}, open(os.path.join(args.dir, "call.json"), "w"))
    with open(os.path.join(args.dir, "manifest.jsonl"), "w") as f:
        f.write(json.dumps({"path": "call.wav", "duration": round(len(st) / RATE, 3)}) + "\n")
    json.dump({"on": on, "off": off, "interrupt": on[3], "backchannel": on[5],
               "yield": cut}, open(os.path.join(args.dir, "truth.json"), "w"))


def read_f32_wav(path):
    b = open(path, "rb").read()
    assert b[:4] == b"RIFF" and b[8:12] == b"WAVE"
    p, ch, data = 12, None, None
    while p < len(b):
        cid, n = b[p:p + 4], struct.unpack("<I", b[p + 4:p + 8])[0]
        if cid == b"fmt ":
            fmt, ch = struct.unpack("<HH", b[p + 8:p + 12])
            assert fmt == 3
        elif cid == b"data":
            data = np.frombuffer(b[p + 8:p + 8 + n], np.float32)
        p += 8 + n + (n & 1)
    return data.reshape(-1, ch)


def write_f32_wav(path, x):
    x = np.asarray(x, np.float32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + 4 * len(x)) + b"WAVEfmt ")
        f.write(struct.pack("<IHHIIHH", 16, 3, 1, SR, SR * 4, 4, 32))
        f.write(b"data" + struct.pack("<I", 4 * len(x)) + x.tobytes())


def need(cond, what, bad):
    if not cond:
        bad.append(what)


def stretches(spans):
    """[start_frame, end_frame, start_s, end_s] merged across pauses under 3 frames."""
    out = []
    for a, b, t0, t1 in spans:
        if out and a < out[-1][1] + 3:
            out[-1][1], out[-1][3] = max(out[-1][1], b), max(out[-1][3], t1)
        else:
            out.append([a, b, t0, t1])
    return out


def events_of(model, user, reaction, yld):
    """The documented event rules over the two sides' sentence frames."""
    ms, us, ev = stretches(model), stretches(user), []
    for u0, u1, t0, t1 in us:
        m = next((k for k, s in enumerate(ms) if s[1] > u0), None)
        if m is None or ms[m][0] > u0:
            continue
        m0, m1 = ms[m][:2]
        if t1 - t0 < reaction and m1 > u1:
            ev.append(("backchannel", u0, u1 - u0))
        elif t1 - t0 >= reaction and m1 - u0 <= yld and (m + 1 == len(ms) or ms[m + 1][0] >= u1):
            ev.append(("interrupt", u0, min(u1, m1) - u0))
        else:
            ev.append(("overlap", u0, min(u1, m1) - u0))
    for m0, m1, _, _ in ms:
        u = next((s for s in us if s[1] > m0), None)
        if u and u[0] < m0:
            ev.append(("overlap", m0, min(u[1], m1) - m0))
    return sorted(ev, key=lambda e: e[1])


def check(args):
    flm = args.flm
    r = json.load(open(args.recipe))
    lead, F = r["packing"]["lead"], r["packing"]["sample_frames"]
    reaction = r["dialog"].get("reaction_s", 0.5)
    yld = round(r["dialog"].get("yield_s", 1.0) * 12.5)
    lines = [json.loads(l) for l in open(args.aligned)]
    by_id = {u["id"]: u for u in lines}
    texts = [s["text"] for u in lines for s in u["sentences"]]
    tk = subprocess.run([flm, "tokenize", "--tokenizer", args.tokenizer], input="\n".join(texts) + "\n",
                        capture_output=True, text=True, check=True).stdout.splitlines()
    toks = {t: [int(x) for x in l.split()] for t, l in zip(texts, tk)}
    stereo = read_f32_wav(args.stereo)
    rows = subprocess.run([flm, "index", "query", args.dataset,
                           "SELECT s.sample_key, sh.path, s.record FROM samples s JOIN shards sh "
                           "ON sh.id = s.shard_id ORDER BY s.sample_key"],
                          capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    bad, parts, n_events, kinds = [], {}, 0, {}
    tmp = os.path.join(os.path.dirname(args.stereo), "seg")
    os.makedirs(tmp, exist_ok=True)
    for row in rows:
        key, path, rec = row.split("\t")
        smp = json.loads(subprocess.run([flm, "inspect", f"{args.dataset}/{path}:{rec}", "--json"],
                                        capture_output=True, text=True, check=True).stdout)
        meta, T = smp["metadata"], smp["n_frames"]
        tokens = np.array(smp["tokens"])
        mid = key.rsplit(".part", 1)[0]
        model = by_id[mid]
        side = meta["conversation.model_side"]
        ch = meta["conversation.model_channel"]
        user = [u for u in lines if u["audio"] == model["audio"] and u["id"] != mid]
        need(side == ("left" if ch == 0 else "right"), f"{key}: side {side}, channel {ch}", bad)
        need(smp["style"] == "conversation", f"{key}: style {smp['style']}", bad)
        s0 = meta["conversation.start_frame"]
        parts.setdefault(mid, []).append((meta["conversation.part"], s0, T, meta["conversation.parts"]))
        need(T <= F or meta["conversation.part"] == meta["conversation.parts"] - 1,
             f"{key}: {T} frames > {F}", bad)
        # text: each model sentence's tokens from max(start - lead, previous end, 0)
        ms = [(s["start_frame"], s["end_frame"], s["start"], s["end"]) for s in model["sentences"]]
        us = [(s["start_frame"], s["end_frame"], s["start"], s["end"])
              for s in user[0]["sentences"]] if user else []
        want = np.full(T, WAIT)
        end, short, n_here = 0, 0, 0
        for s, (a, b, _, _) in zip(model["sentences"], ms):
            t = toks[s["text"]]
            at = max(a - lead, end, 0)
            end = at + len(t)
            if not (s0 <= a < s0 + T):
                continue
            n_here += 1
            short += at > a - lead
            need(s0 <= min(at, a) and max(end, b) <= s0 + T, f"{key}: sentence at {a} cut by the part", bad)
            want[at - s0:end - s0] = t
        need(np.array_equal(tokens[0], want), f"{key}: text channel differs at frame "
             f"{int(np.argmax(tokens[0] != want)) if not np.array_equal(tokens[0], want) else -1}", bad)
        need(n_here == meta["conversation.sentences"], f"{key}: {n_here} sentences, meta says "
             f"{meta['conversation.sentences']}", bad)
        need(short == meta["conversation.short_leads"], f"{key}: {short} short leads, meta "
             f"{meta['conversation.short_leads']}", bad)
        # events: the documented rules, the part's share
        ev = [(k, f - s0, min(n, s0 + T - f)) for k, f, n in events_of(ms, us, reaction, yld)
              if s0 <= f < s0 + T]
        got = [(e["kind"], e["frame"], e["n_frames"]) for e in smp["events"]]
        need(got == ev, f"{key}: events {got}, the rules give {ev}", bad)
        n_events += len(got)
        for k, f, n in got:
            kinds.setdefault(k, []).append((side, f + s0))
        # codes: speak = the model channel's frames encoded; listen = the other's (unaugmented)
        for name, c, rows_ in (("speak", ch, tokens[1:9]), ("listen", 1 - ch, tokens[9:17])):
            if name == "listen" and not args.exact_listen:
                continue
            seg = np.zeros(T * SPF, np.float32)
            x = stereo[s0 * SPF:(s0 + T) * SPF, c]
            seg[:len(x)] = x
            wav, npy = os.path.join(tmp, "x.wav"), os.path.join(tmp, "x.npy")
            write_f32_wav(wav, seg)
            subprocess.run([flm, "codec", "encode", wav, "-o", npy, "--model", args.codec],
                           capture_output=True, check=True)
            need(np.array_equal(np.load(npy), rows_), f"{key}: {name} codes are not channel {c}'s", bad)
    for mid, ps in parts.items():  # parts tile the recording
        ps.sort()
        need([p[0] for p in ps] == list(range(ps[0][3])), f"{mid}: parts {ps}", bad)
        need(all(ps[i][1] + ps[i][2] == ps[i + 1][1] for i in range(len(ps) - 1)) and ps[0][1] == 0,
             f"{mid}: parts do not tile: {ps}", bad)
    print(json.dumps({"samples": len(rows), "sides": sorted(parts), "events": n_events,
                      "kinds": kinds, "bad": bad[:8]}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    c = sub.add_parser("check")
    c.add_argument("dataset")
    for k in ("--flm", "--tokenizer", "--codec", "--recipe", "--aligned", "--stereo"):
        c.add_argument(k, required=True)
    c.add_argument("--exact-listen", action="store_true")
    a = ap.parse_args()
    make(a) if a.cmd == "make" else check(a)


if __name__ == "__main__":
    main()
