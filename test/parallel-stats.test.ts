// The executor's call statistics: for one prefill and one decode step of stories260K on 2 threads with
// every call split however small (minParallelMs 0), the counters hold exactly the calls the llama
// graph makes per layer (the layer count read from the file's metadata), split or run alone as the
// split rules say, and everything is zero again after resetStats(). Timings are only checked for
// being there, never against thresholds.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import { readGGUF } from '../src/gguf/reader.js';
import { metaNumber } from '../src/gguf/metadata.js';
import { CALL_KINDS, sumCallStats } from '../src/parallel/executor.js';
import type { CallKind, ExecutorStats } from '../src/parallel/executor.js';
import { GGMLType } from '../src/quant/formats.js';
import { openFileStorage } from '../src/storage/node.js';
import { MODELS } from './support/golden.js';

const opened: Model[] = [];
afterAll(async () => {
  for (const m of opened) await m.close();
});

/** Layer count and whether the logits matrix takes a converted (non-f32) input, from the file itself. */
async function fileFacts(path: string): Promise<{ layers: number; outputConverted: boolean }> {
  const storage = await openFileStorage(path);
  try {
    const f = await readGGUF(storage);
    const layers = metaNumber(f, 'llama.block_count');
    if (layers === undefined) throw new Error(`${path} has no llama.block_count`);
    const output = f.tensorsByName.get('output.weight') ?? f.tensorsByName.get('token_embd.weight');
    return { layers, outputConverted: output!.type !== GGMLType.F32 };
  } finally {
    await storage.close();
  }
}

async function open(path: string, threads: number): Promise<Model> {
  const m = await loadModel(path, { threads, contextLength: 64, parallel: { minParallelMs: 0 } });
  opened.push(m);
  return m;
}

type Counts = Record<CallKind, readonly [serial: number, split: number]>;

function expectCounts(s: ExecutorStats, want: Counts): void {
  for (const kind of CALL_KINDS) {
    const c = s.calls[kind];
    expect([c.serialCalls, c.splitCalls], kind).toEqual(want[kind]);
    expect(c.calls, kind).toBe(c.serialCalls + c.splitCalls);
  }
}

function expectAllZero(s: ExecutorStats): void {
  expect(s.parallelCalls).toBe(0);
  expect(s.serialCalls).toBe(0);
  const total = sumCallStats(s.calls);
  expect(total.calls).toBe(0);
  expect(total.jobs).toBe(0);
  expect(total.splitMs + total.ownMs + total.waitMs + total.wakeMs + total.slowestMs).toBe(0);
  expect(total.threadMs.every((ms) => ms === 0)).toBe(true);
}

// Token ids inside the 512-token vocabulary (their meaning does not matter here).
const PROMPT = [1, 403, 407, 261, 378, 300, 411, 290];

describe('executor call statistics', () => {
  it('count every call of a stories260K prefill and decode step on 2 threads', async () => {
    const path = `${MODELS}/stories260K.gguf`;
    const { layers: L, outputConverted } = await fileFacts(path);
    expect(outputConverted).toBe(false); // the f32 file: no activation conversions anywhere
    const m = await open(path, 2);
    m.executor.resetStats();
    expectAllZero(m.executor.stats());

    // Prefill of 8 tokens (one batch), logits of the last only: per layer 2 norms, q/k/v, output,
    // gate/up and down matmul groups, attention, SwiGLU and 2 residual adds; then the final norm and
    // the logits matmul of one row. Everything splits but the final norm (one token cannot be split).
    m.evaluate(PROMPT);
    let s = m.executor.stats();
    expectCounts(s, {
      matmul: [0, 4 * L + 1],
      attention: [0, L],
      norm: [1, 2 * L],
      convert: [0, 0],
      swiglu: [0, L],
      add: [0, 2 * L],
    });
    expect(s.calls.matmul.jobs).toBe(7 * L + 1);
    expect(s.parallelCalls).toBe(4 * L + 1 + L + 2 * L + L + 2 * L);
    const split = sumCallStats(s.calls);
    expect(split.threadMs).toHaveLength(2);
    expect(split.threadMs[0]).toBeGreaterThan(0);
    expect(split.threadMs[1]).toBeGreaterThan(0);
    expect(split.splitMs).toBeGreaterThanOrEqual(split.ownMs + split.waitMs);
    expect(split.slowestMs).toBeGreaterThanOrEqual(Math.max(...split.threadMs) / split.splitCalls);
    expect(split.serialMs).toBeNull(); // not asked for

    // One decode step, calls run alone timed: norms of one token stay on the coordinator (a norm is
    // one reduction over its row); SwiGLU of one token splits by runs of its row.
    m.executor.resetStats({ timeSerialCalls: true });
    expectAllZero(m.executor.stats());
    m.evaluate([PROMPT.length + 1]);
    s = m.executor.stats();
    expectCounts(s, {
      matmul: [0, 4 * L + 1],
      attention: [0, L],
      norm: [2 * L + 1, 0],
      convert: [0, 0],
      swiglu: [0, L],
      add: [0, 2 * L],
    });
    expect(s.serialCalls).toBe(2 * L + 1);
    expect(s.calls.norm.serialMs).toBeGreaterThan(0);
    expect(s.calls.matmul.serialMs).toBe(0);

    m.executor.resetStats();
    expectAllZero(m.executor.stats());
    expect(m.executor.stats().calls.norm.serialMs).toBeNull();
  });

  it('count one conversion per matmul group for Q8_0 weights', async () => {
    const path = `${MODELS}/stories260K-Q8_0.gguf`;
    const { layers: L, outputConverted } = await fileFacts(path);
    const m = await open(path, 2);
    m.executor.resetStats();
    m.evaluate(PROMPT);
    const { convert: c, norm: n } = m.executor.stats().calls;
    // q/k/v share one converted input, gate/up another, each made by its norm in the same call (the
    // fused rmsNormToQ8_0, split by tokens); the attention output and the SwiGLU output are converted
    // on their own. The logits row is one token: its norm runs alone (fused too when not F32).
    expect([c.serialCalls, c.splitCalls]).toEqual([0, 2 * L]);
    expect([n.serialCalls, n.splitCalls]).toEqual([1, 2 * L]);
    expect(outputConverted).toBe(true); // a quantized logits matrix: its norm is a fused one
  });

  it('count calls on one thread too, all of them run alone', async () => {
    const path = `${MODELS}/stories260K.gguf`;
    const { layers: L } = await fileFacts(path);
    const m = await open(path, 1);
    m.executor.resetStats();
    m.evaluate(PROMPT);
    const s = m.executor.stats();
    expectCounts(s, {
      matmul: [4 * L + 1, 0],
      attention: [L, 0],
      norm: [2 * L + 1, 0],
      convert: [0, 0],
      swiglu: [L, 0],
      add: [2 * L, 0],
    });
    expect(s.calls.matmul.threadMs).toEqual([0]);
    m.executor.resetStats();
    expectAllZero(m.executor.stats());
  });
});
