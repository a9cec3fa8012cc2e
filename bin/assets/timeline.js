// Renders the lanes of one packed sample from the JSON embedded in the page (id "flm-data").
// Lanes: text (tokens, <wait> runs, <asr>/<answer>), who speaks when (model, user, overlaps; when
// the sample carries it), speak and listen codes, events (names never overlapping); a time
// axis in seconds and frames; zoom with the buttons or ctrl + wheel; scroll horizontally.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("flm-data").textContent);
  const labelW = 68;
  let px = Math.max(2, Math.min(24, Math.floor(1200 / Math.max(1, data.n_frames))));

  function el(tag, cls, parent, style, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (style) Object.assign(e.style, style);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function box(parent, cls, start, len, title, text) {
    const e = el("div", cls, parent, { left: labelW + start * px + "px", width: Math.max(1, len * px) + "px" }, text);
    if (title) e.title = title;
    return e;
  }
  function lane(canvas, id, label) {
    const l = el("div", "lane", canvas);
    l.id = "lane-" + id;
    el("div", "lane-label", l, null, label);
    return l;
  }
  function overlaps(a, b) { // frames where both lists of [start, length] runs hold
    const out = [];
    for (const [s1, n1] of a)
      for (const [s2, n2] of b) {
        const s = Math.max(s1, s2), e = Math.min(s1 + n1, s2 + n2);
        if (e > s) out.push([s, e - s]);
      }
    return out;
  }
  function render() {
    const canvas = document.getElementById("canvas");
    canvas.textContent = "";
    canvas.style.width = labelW + data.n_frames * px + "px";
    const axis = el("div", null, canvas);
    axis.id = "axis";
    const secs = data.n_frames * data.frame_s;
    const steps = [0.08, 0.4, 0.8, 2, 4, 8, 20, 40, 80, 200];
    let step = steps.find((s) => (s / data.frame_s) * px >= 70) || 400;
    for (let t = 0; t <= secs + 1e-9; t += step) {
      const f = Math.round(t / data.frame_s);
      const k = el("div", "tick", axis, { left: labelW + f * px + "px" });
      el("span", null, k, null, t.toFixed(step < 1 ? 2 : 0) + " s / " + f);
    }
    const text = lane(canvas, "text", "text");
    for (const [s, n] of data.wait_runs) box(text, "wait", s, n, "<wait> x" + n + " (frames " + s + "-" + (s + n - 1) + ")");
    for (const [f, id, kind, piece] of data.text) {
      const special = kind !== "tok";
      const label = special ? "<" + kind + ">" : piece !== null ? piece : String(id);
      box(text, special ? "tok special" : "tok", f, 1, "frame " + f + " (" + (f * data.frame_s).toFixed(2) + " s): " + label + " [" + id + "]", px >= 14 ? label : "");
    }
    if (data.voices) { // who speaks when: the model (speak side), the user (listen side), overlaps
      const both = overlaps(data.voices.model, data.voices.user);
      for (const [name, runs] of [["model", data.voices.model], ["user", data.voices.user]]) {
        const l = lane(canvas, "voice-" + name, name);
        for (const [s, n] of runs) box(l, "seg-voice-" + name, s, n, name + " speaks: frames " + s + "-" + (s + n - 1) + " (" + (s * data.frame_s).toFixed(2) + "-" + ((s + n) * data.frame_s).toFixed(2) + " s)");
        for (const [s, n] of both) box(l, "seg-overlap", s, n, "both speak: frames " + s + "-" + (s + n - 1));
      }
    }
    for (const [name, runs] of [["speak", data.speak], ["listen", data.listen]]) {
      const l = lane(canvas, name, name);
      for (const [s, n, state] of runs)
        if (state !== "empty") box(l, "seg-" + state, s, n, name + " " + state + ": frames " + s + "-" + (s + n - 1));
    }
    if (data.waves) {
      for (const name of ["listen", "speak"]) {
        const l = lane(canvas, "wave-" + name, name + " wave");
        const c = el("canvas", null, l, { position: "absolute", left: labelW + "px", top: "2px" });
        c.id = "wave-canvas-" + name;
        c.width = Math.max(1, data.n_frames * px);
        c.height = 30;
        const g = c.getContext("2d");
        g.fillStyle = name === "speak" ? "#2e9e5b" : "#3a7bd5";
        data.waves[name].forEach((v, f) => {
          const h = Math.max(1, (v / 100) * 28);
          g.fillRect(f * px, 15 - h / 2, Math.max(1, px - (px > 3 ? 1 : 0)), h);
        });
      }
    }
    // events: each name in the first row where it does not touch the one before (never overlapping)
    if (data.spec) { // spectrograms: per_frame columns per frame, bands low to high (drawn bottom up)
      for (const name of ["listen", "speak"]) {
        const l = lane(canvas, "spec-" + name, name + " spectrum");
        l.classList.add("spec");
        const c = el("canvas", null, l, { position: "absolute", left: labelW + "px", top: "1px" });
        c.id = "spec-canvas-" + name;
        c.width = Math.max(1, data.n_frames * px);
        c.height = data.spec.bands;
        const cols = data.n_frames * data.spec.per_frame, B = data.spec.bands;
        const bytes = Uint8Array.from(atob(data.spec[name]), (ch) => ch.charCodeAt(0));
        const img = new ImageData(cols, B);
        for (let x = 0; x < cols; x++)
          for (let b = 0; b < B; b++) {
            const v = bytes[x * B + b] / 255, i = 4 * ((B - 1 - b) * cols + x);
            img.data[i] = Math.round(255 * Math.min(1, 1.6 * v));
            img.data[i + 1] = Math.round(255 * Math.max(0, 2 * v - 1));
            img.data[i + 2] = Math.round(255 * Math.max(0, Math.min(1, 1.2 * v < 0.5 ? 2 * v : 2 - 2.4 * v)));
            img.data[i + 3] = 255;
          }
        const off = document.createElement("canvas");
        off.width = cols;
        off.height = B;
        off.getContext("2d").putImageData(img, 0, 0);
        const g = c.getContext("2d");
        g.imageSmoothingEnabled = false;
        g.drawImage(off, 0, 0, c.width, c.height);
      }
    }
    const ev = lane(canvas, "events", "events");
    const rowEnd = [];
    for (const e of [...data.sample.events].sort((a, b) => a.frame - b.frame)) {
      const left = labelW + e.frame * px, width = Math.max(Math.max(1, e.n_frames) * px, e.kind.length * 7 + 6);
      let row = rowEnd.findIndex((end) => left >= end + 4);
      if (row < 0) row = rowEnd.push(0) - 1;
      rowEnd[row] = left + width;
      const b = box(ev, "event", e.frame, Math.max(1, e.n_frames), e.kind + " at frame " + e.frame + " (" + (e.frame * data.frame_s).toFixed(2) + " s), " + e.n_frames + " frames, value " + e.value, e.kind);
      b.style.top = 4 + row * 16 + "px";
    }
    ev.style.height = Math.max(34, 8 + rowEnd.length * 16) + "px";
    audioUi(canvas);
    document.getElementById("zoom").textContent = px + " px/frame";
  }
  // audio tied to the timeline: the last player started is the timeline's; its position is the
  // playhead; a click on a lane seeks it there; a drag on the axis selects frames to play
  const audios = ["mixed", "listen", "speak"].map((k) => document.getElementById("audio-" + k)).filter(Boolean);
  let active = audios[0] || null, sel = null, drag = null, stopAt = null;
  function frameAt(e) {
    const r = document.getElementById("canvas").getBoundingClientRect();
    return Math.max(0, Math.min(data.n_frames, (e.clientX - r.left - labelW) / px));
  }
  function drawPlayhead() {
    const h = document.getElementById("playhead");
    if (h && active) h.style.left = labelW + (active.currentTime / data.frame_s) * px + "px";
  }
  function drawSelection() {
    const d = document.getElementById("sel-box"), b = document.getElementById("play-selection");
    if (!d) return;
    d.style.display = sel ? "block" : "none";
    if (sel) Object.assign(d.style, { left: labelW + sel[0] * px + "px", width: Math.max(1, (sel[1] - sel[0]) * px) + "px" });
    if (b) b.disabled = !sel;
    const t = document.getElementById("selection");
    if (t && sel) t.textContent = "frames " + Math.floor(sel[0]) + "-" + Math.ceil(sel[1]) + " (" + (sel[0] * data.frame_s).toFixed(2) + "-" + (sel[1] * data.frame_s).toFixed(2) + " s)";
  }
  function tick() {
    if (active && stopAt !== null && active.currentTime >= stopAt) { active.pause(); stopAt = null; }
    drawPlayhead();
    if (active && !active.paused) requestAnimationFrame(tick);
  }
  for (const a of audios) {
    a.addEventListener("play", () => {
      for (const o of audios) if (o !== a) o.pause();
      active = a;
      requestAnimationFrame(tick);
    });
    a.addEventListener("seeked", drawPlayhead);
    a.addEventListener("timeupdate", drawPlayhead);
  }
  function audioUi(canvas) {
    if (!audios.length) return;
    const h = el("div", null, canvas);
    h.id = "playhead";
    const d = el("div", null, canvas);
    d.id = "sel-box";
    drawPlayhead();
    drawSelection();
  }
  if (audios.length) {
    const canvas = document.getElementById("canvas");
    canvas.addEventListener("mousedown", (e) => {
      if (e.target.closest("#axis")) { drag = frameAt(e); sel = null; drawSelection(); e.preventDefault(); }
    });
    window.addEventListener("mousemove", (e) => {
      if (drag === null) return;
      const f = frameAt(e);
      sel = f > drag ? [drag, f] : [f, drag];
      drawSelection();
    });
    window.addEventListener("mouseup", () => { drag = null; });
    canvas.addEventListener("click", (e) => {
      if (e.target.closest("#axis") || e.target.closest(".lane-label") || !active) return;
      active.currentTime = frameAt(e) * data.frame_s;
      drawPlayhead();
    });
    const b = document.getElementById("play-selection");
    if (b) b.onclick = () => {
      if (!sel || !active) return;
      active.currentTime = sel[0] * data.frame_s;
      stopAt = sel[1] * data.frame_s;
      active.play();
    };
  }
  function zoom(f) {
    px = Math.max(1, Math.min(48, Math.round(px * f) || 1));
    render();
  }
  document.getElementById("zoom-in").onclick = () => zoom(2);
  document.getElementById("zoom-out").onclick = () => zoom(0.5);
  document.getElementById("scroller").addEventListener("wheel", (e) => {
    if (e.ctrlKey) { e.preventDefault(); zoom(e.deltaY < 0 ? 2 : 0.5); }
  }, { passive: false });
  render();
})();
