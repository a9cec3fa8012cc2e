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
    document.getElementById("zoom").textContent = px + " px/frame";
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
