#!/usr/bin/env node
// Reference ids from the HuggingFace `tokenizers` library (Rust, through @anush008/tokenizers).
// usage: node reference.js TOKENIZER_JSON CORPUS_JSONL > ids.txt
// Each corpus line is one JSON string; each output line holds its ids separated by spaces.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'node_modules', '@anush008', 'tokenizers'));

async function main() {
  const [tokPath, corpusPath] = process.argv.slice(2);
  if (!tokPath || !corpusPath) {
    process.stderr.write('usage: node reference.js TOKENIZER_JSON CORPUS_JSONL\n');
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(tokPath);
  const lines = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.length > 0);
  const texts = lines.map((l) => JSON.parse(l));
  const out = [];
  const batch = 512;
  for (let i = 0; i < texts.length; i += batch) {
    const encs = await tok.encodeBatch(texts.slice(i, i + batch), { addSpecialTokens: false });
    for (const e of encs) out.push(e.getIds().join(' '));
  }
  process.stdout.write(out.join('\n') + '\n');
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
