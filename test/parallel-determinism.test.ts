// Determinism of the worker pool: every output row, head and token is computed whole by one thread, so
// logits are bit-identical for 1, 2 and 3 threads, on the prefill (batched) and decode (one token)
// paths, with every call split however small (minParallelMs 0). Against llama.cpp's golden logits
// for the F32 and F16 files.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import type { LoadModelOptions } from '../src/engine/load.js';
import type { Storage } from '../src/storage/storage.js';
import { loadGolden, maxAbsDiff, MODELS } from './support/golden.js';
import { storageOf, synthBytes } from './parallel-synth.js';

const THREADS = [1, 2, 3] as const;
const opened: Model[] = [];
afterAll(async () => {
  for (const m of opened) await m.close();
});

async function open(source: string | (() => Storage), threads: number, options: LoadModelOptions = {}): Promise<Model> {
  const m = await loadModel(typeof source === 'string' ? source : source(), { ...options, threads, parallel: { minParallelMs: 0 } });
  opened.push(m);
  return m;
}

/** Index of the first differing float, or -1 (bitwise: NaNs of equal bits compare equal). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

interface Runs {
  /** Per thread count: logits of every position, prefilled in batches. */
  readonly batched: Float32Array[];
  /** Per thread count: the same, one token at a time (the decode path). */
  readonly decode: Float32Array[];
}

/** Logits of every position for `tokens` on each thread count, batched and one token at a time. */
async function logitsPerThreadCount(source: string | (() => Storage), tokens: readonly number[]): Promise<Runs> {
  const runs: Runs = { batched: [], decode: [] };
  for (const threads of THREADS) {
    const batched = await open(source, threads);
    expect(batched.executor.threads).toBe(threads);
    runs.batched.push(batched.evaluate(tokens, { all: true }));
    if (threads > 1) expect(batched.executor.stats().parallelCalls).toBeGreaterThan(0);
    const decode = await open(source, threads, { batchSize: 1 });
    runs.decode.push(decode.evaluate(tokens, { all: true }));
    await batched.close();
    await decode.close();
  }
  return runs;
}

/** Each path gives the same bits on every thread count (the two paths may differ from each other). */
function expectAllIdentical(runs: Runs): void {
  for (const path of ['batched', 'decode'] as const) {
    const r = runs[path];
    for (let i = 1; i < r.length; i++) expect(firstDifference(r[0]!, r[i]!), `${path}: ${THREADS[i]} threads differ from 1`).toBe(-1);
  }
}

describe('logits are bit-identical for 1, 2 and 3 threads', () => {
  it('stories260K F32, and within 0.01 of llama.cpp', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const tokens = [...g.promptTokens, ...g.generatedTokens.slice(0, -1)];
    const runs = await logitsPerThreadCount(g.model, tokens);
    expectAllIdentical(runs);
    expect(maxAbsDiff(runs.batched[0]!, g.logits)).toBeLessThan(0.01);
    expect(maxAbsDiff(runs.decode[0]!, g.logits)).toBeLessThan(0.01);
  });

  it('stories260K F32: greedy generation on 3 threads gives llama.cpp tokens', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const m = await open(g.model, 3);
    const out = await m.complete(g.promptTokens, { temperature: 0, maxTokens: g.generatedTokens.length });
    expect(out.tokens).toEqual(g.generatedTokens);
    expect(out.text).toBe(g.text);
  });

  it('stories260K Q8_0 (thread counts against each other)', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64.Q8_0');
    const runs = await logitsPerThreadCount(`${MODELS}/stories260K-Q8_0.gguf`, [...g.promptTokens, ...g.generatedTokens.slice(0, 40)]);
    expectAllIdentical(runs);
  });

  it('llama-2-tiny-random (F16), and within 0.05 of llama.cpp', async () => {
    const g = loadGolden('llama-2-tiny-random', 'once_upon_a_time.greedy32');
    const tokens = [...g.promptTokens, ...g.generatedTokens.slice(0, -1)];
    const runs = await logitsPerThreadCount(g.model, tokens);
    expectAllIdentical(runs);
    expect(maxAbsDiff(runs.batched[0]!, g.logits)).toBeLessThan(0.05);
    expect(maxAbsDiff(runs.decode[0]!, g.logits)).toBeLessThan(0.05);
  });

  it('synthetic tiny-llama Q4_0 and tiny-qwen2 Q4_K_M (row splits of 256 and 512 rows, k-quants)', async () => {
    for (const [shape, type] of [['tiny-llama', 'q4_0'], ['tiny-qwen2', 'q4_k_m']] as const) {
      const bytes = await synthBytes(shape, type, 5);
      const tokens = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % 500);
      const runs = await logitsPerThreadCount(() => storageOf(bytes, `${shape}-${type}`), tokens);
      expect(runs.batched[0]!.every(Number.isFinite)).toBe(true);
      expectAllIdentical(runs);
    }
  });
});
