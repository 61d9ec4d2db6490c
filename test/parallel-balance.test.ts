// Load balancing of the worker pool: shares follow each thread's measured throughput, so a worker made
// five times slower (the testSlowdown hook spins 4× its own job time after each job) gets less work,
// and the step beats an even split. Timing only decides the direction, retried a few times because
// the machine has 2 cores and other processes.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import type { ModelShape } from '../src/synth/shapes.js';
import { storageOf, synthBytes } from './parallel-synth.js';

/** Big enough that matmuls dominate a prefill step, small enough to write and run in a second. */
const SHAPE: ModelShape = {
  name: 'balance-test',
  architecture: 'llama',
  displayName: 'balance test (synthetic)',
  source: 'made up for the load-balancing test',
  vocabSize: 1024,
  contextLength: 256,
  embeddingLength: 512,
  blockCount: 2,
  feedForwardLength: 1536,
  headCount: 8,
  headCountKV: 8,
  ropeFreqBase: 10000,
  rmsNormEps: 1e-5,
  tiedEmbeddings: false,
  qkvBias: false,
};
const SLOWDOWN = { participant: 1, factor: 5 } as const;
const TOKENS = Array.from({ length: 24 }, (_, i) => 300 + i * 7);

const opened: Model[] = [];
afterAll(async () => {
  for (const m of opened) await m.close();
});

/** Fastest of `rounds` prefill steps, in milliseconds. */
function bestStepMs(m: Model, rounds: number): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    m.evaluate(TOKENS);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

describe('load balancing', () => {
  it('a worker slowed 5× gets a smaller share and the step beats an even split', async () => {
    const bytes = await synthBytes(SHAPE, 'f32', 3);
    const open = async (balance: 'throughput' | 'even'): Promise<Model> => {
      const m = await loadModel(storageOf(bytes, `balance-${balance}`), { threads: 2, parallel: { balance, testSlowdown: SLOWDOWN } });
      opened.push(m);
      return m;
    };
    const balanced = await open('throughput');
    const even = await open('even');
    let tBalanced = Infinity;
    let tEven = 0;
    let shares: readonly number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      bestStepMs(balanced, 1);
      bestStepMs(even, 1);
      tBalanced = bestStepMs(balanced, 3);
      tEven = bestStepMs(even, 3);
      shares = balanced.executor.stats().shares;
      if (shares[1]! < shares[0]! && tBalanced < tEven) break;
    }
    const verdict = `balanced ${tBalanced.toFixed(1)} ms (shares ${shares.map((s) => s.toFixed(2)).join('/')}), even ${tEven.toFixed(1)} ms`;
    expect(shares[1], verdict).toBeLessThan(shares[0]!);
    expect(tBalanced, verdict).toBeLessThan(tEven);
    expect(balanced.executor.stats().parallelCalls).toBeGreaterThan(0);
    // Both splits compute the same logits.
    expect(balanced.evaluate(TOKENS)).toEqual(even.evaluate(TOKENS));
  });
});
