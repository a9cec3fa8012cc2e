#!/usr/bin/env node
// Reference side of bench_tokenizer: @anush008/tokenizers (Rust HuggingFace tokenizers) on the
// same corpus. usage: RAYON_NUM_THREADS=N node bench_tokenizer_ref.js TOKENIZER_JSON CORPUS_JSONL [MIN_MB]
// The thread count must be fixed by the environment before the library starts, so the shell
// script runs this once per thread count. Prints "key value" lines like bench_tokenizer.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'tests', 'node_modules', '@anush008', 'tokenizers'));

async function main() {
  const [tokPath, corpusPath, minMbArg] = process.argv.slice(2);
  const minMb = Number(minMbArg || 20);
  const texts = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
  const total = texts.reduce((s, t) => s + Buffer.byteLength(t, 'utf8'), 0);
  const rss0 = process.memoryUsage().rss;
  let tok;
  let bestLoad = 1e9;
  let bestLoadCpu = 1e9;
  for (let k = 0; k < 3; k++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    tok = Tokenizer.fromFile(tokPath);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    if (dt < bestLoad) bestLoad = dt;
    if ((c.user + c.system) / 1e6 < bestLoadCpu) bestLoadCpu = (c.user + c.system) / 1e6;
  }
  console.log(`lines ${texts.length}\nbytes ${total}`);
  console.log(`load_ms ${(1e3 * bestLoad).toFixed(1)}`);
  console.log(`load_cpu_ms ${(1e3 * bestLoadCpu).toFixed(1)}`);
  console.log(`rss_after_load_mb ${((process.memoryUsage().rss - rss0) / 1e6).toFixed(1)}`);
  const repeat = Math.floor((minMb * 1e6) / total) + 1;
  const batch = 1024;
  let best = 1e9;
  let bestCpu = 1e9;
  let nIds = 0;
  for (let run = 0; run < 3; run++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    nIds = 0;
    for (let r = 0; r < repeat; r++)
      for (let i = 0; i < texts.length; i += batch) {
        const encs = await tok.encodeBatch(texts.slice(i, i + batch), { addSpecialTokens: false });
        for (const e of encs) nIds += e.getIds().length;
      }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6; // the whole process: JS thread and the Rust pool
    if (dt < best) best = dt;
    if (cpu < bestCpu) bestCpu = cpu;
  }
  // the same without reading the ids back into JS: closer to the library's own speed
  let bestNoIds = 1e9;
  for (let run = 0; run < 3; run++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < repeat; r++)
      for (let i = 0; i < texts.length; i += batch)
        await tok.encodeBatch(texts.slice(i, i + batch), { addSpecialTokens: false });
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < bestNoIds) bestNoIds = dt;
  }
  const threads = process.env.RAYON_NUM_THREADS || 'default';
  console.log(`threads_${threads}_noids_mb_s ${((total * repeat) / bestNoIds / 1e6).toFixed(2)}`);
  console.log(`threads_${threads}_mb_s ${((total * repeat) / best / 1e6).toFixed(2)}`);
  console.log(`threads_${threads}_ids ${nIds / repeat}`);
  console.log(`threads_${threads}_mb_per_cpu_s ${((total * repeat) / bestCpu / 1e6).toFixed(2)}`);
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
