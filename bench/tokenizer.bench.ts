// Byte-level BPE speed: encodes and decodes 100 KB of mixed text (the test corpus, repeated with
// variations so that words are not all cached) with the Llama 3 and Qwen 3 vocabularies, and prints
// milliseconds and tokens per second for a cold word cache and a warm one.
// Run: npx vite-node bench/tokenizer.bench.ts
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGGUFBytes } from '../src/gguf/reader.js';
import { memorySink, writeGGUF } from '../src/gguf/writer.js';
import { loadLenmlVocab } from '../src/synth/vocab-hf.js';
import type { LenmlVocab } from '../src/synth/vocab-hf.js';
import { BpeTokenizer } from '../src/tokenizer/bpe.js';
import { readVocab } from '../src/tokenizer/vocab.js';

const TARGET_CHARS = 100_000;
const CORPUS_DIR = join(import.meta.dirname, '..', 'test', 'fixtures', 'tokenizer-corpus');

function benchText(): string {
  const parts: string[] = (JSON.parse(readFileSync(join(CORPUS_DIR, 'cases.json'), 'utf8')) as { text: string }[]).map((c) => c.text);
  for (const f of readdirSync(CORPUS_DIR).filter((n) => n.endsWith('.txt'))) parts.push(readFileSync(join(CORPUS_DIR, f), 'utf8'));
  let text = '';
  // Numbering each repetition keeps a share of new words (and numbers) in every pass.
  for (let i = 0; text.length < TARGET_CHARS; i++) text += `${parts[i % parts.length]} #${i * 7919}\n`;
  return text.slice(0, TARGET_CHARS);
}

/** 100 KB of made-up words from a seeded generator: nearly every word is new, so nothing is cached. */
function uniqueWordsText(): string {
  let state = 12345;
  const rand = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const letters = 'abcdefghijklmnopqrstuvwxyzéü';
  let text = '';
  while (text.length < TARGET_CHARS) {
    let word = '';
    for (let n = 2 + rand(10); n > 0; n--) word += letters[rand(letters.length)];
    text += word + (rand(12) === 0 ? '.\n' : ' ');
  }
  return text.slice(0, TARGET_CHARS);
}

function time<T>(fn: () => T): { ms: number; result: T } {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

async function benchVocab(name: LenmlVocab, text: string, unique: string): Promise<void> {
  const setup = performance.now();
  const sink = memorySink();
  await writeGGUF(sink, await loadLenmlVocab(name), []);
  const vocab = readVocab(readGGUFBytes(sink.bytes(), name));
  const build = time(() => new BpeTokenizer(vocab));
  const tok = build.result;
  const setupMs = performance.now() - setup;

  const cold = time(() => tok.encode(text, { addBos: false }));
  const warmRuns = 5;
  let warmMs = Infinity;
  for (let i = 0; i < warmRuns; i++) warmMs = Math.min(warmMs, time(() => tok.encode(text, { addBos: false })).ms);
  const ids = cold.result;
  const fresh = new BpeTokenizer(vocab);
  const uncached = time(() => fresh.encode(unique, { addBos: false }));
  const decode = time(() => tok.decode(ids));
  if (decode.result !== (name === 'qwen3' ? text.normalize('NFC') : text)) throw new Error(`${name}: decode(encode(text)) differs from the text`);

  const kb = (text.length / 1000).toFixed(0);
  const rate = (ms: number): string => `${((ids.length / ms) * 1000).toFixed(0)} tokens/s`;
  console.log(`${name}: ${kb} KB -> ${ids.length} tokens`);
  console.log(`  load (convert + GGUF + vocab): ${setupMs.toFixed(0)} ms, of which tokenizer build ${build.ms.toFixed(0)} ms`);
  console.log(`  encode, cold cache: ${cold.ms.toFixed(1)} ms (${rate(cold.ms)})`);
  console.log(`  encode, warm cache: ${warmMs.toFixed(1)} ms (${rate(warmMs)}, best of ${warmRuns})`);
  console.log(`  encode, ${kb} KB of unique made-up words, empty cache: ${uncached.ms.toFixed(1)} ms (${uncached.result.length} tokens, ${((uncached.result.length / uncached.ms) * 1000).toFixed(0)} tokens/s)`);
  console.log(`  decode:             ${decode.ms.toFixed(1)} ms (${rate(decode.ms)})`);
}

const text = benchText();
const unique = uniqueWordsText();
for (const name of ['llama3', 'qwen3'] as const) await benchVocab(name, text, unique);
