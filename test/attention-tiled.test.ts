// The tiled attention kernel (attentionTiled: keys a tile at a time, running max and sum) in every build.
// Error ceilings and rules:
//   a query seeing at most attentionTileKeys() keys: attention()'s bits exactly (the rule of
//     assembly/ref/attention-tiled.ts), so short prompts and the goldens do not move
//   more keys, vs the float64 definition: 3e-6 * max|v| (measured 5.1e-7, up to 400 keys)
//   simd and relaxed vs the scalar twin: bit-identical (ceiling 0), head dims 64/48/128/10, GQA 2, 3, 7
//   prefill then decode vs token by token, and any split by heads: bit-identical (a query's bits depend
//     only on its position)
//   workspace: attentionTiledScratchBytes(), whatever the context; a guard right after it stays intact
//   model: tiny-llama F32 on a 300-token prompt takes attentionTiled with a workspace smaller than one
//     score per position, its logits within 1e-5 of a float64 forward pass, and bit-identical for 1, 2
//     and 3 threads
import { afterAll, describe, expect, it } from 'vitest';
import { kernelBench, maxAbsDiff, prng, randomF32 } from './kernels-harness.js';
import { attentionF64 } from './support/attention-reference.js';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import type { LoadModelOptions } from '../src/engine/load.js';
import { readGGUF } from '../src/gguf/reader.js';
import { readHParams } from '../src/model/hparams.js';
import { ATTENTION_TILED_SCRATCH_BYTES } from '../src/model/transformer.js';
import type { Transformer } from '../src/model/transformer.js';
import { memoryStorage } from '../src/storage/memory.js';
import { ReferenceModel } from './support/reference-forward.js';
import { synthModelBytes } from './support/synth-model.js';

const fr = Math.fround;
const GUARD = -7;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** One attention problem: queries at positions pos0.. over a cache of pos0 + nTok rows (NaN past them). */
interface Case {
  readonly nTok: number;
  readonly pos0: number;
  readonly nHeads: number;
  readonly nKVHeads: number;
  readonly headDim: number;
  readonly seed: number;
}

function inputs(c: Case) {
  const rand = prng(c.seed);
  const kvStride = c.nKVHeads * c.headDim, qRow = c.nHeads * c.headDim;
  const rows = c.pos0 + c.nTok;
  const ctx = rows + 3;
  const q = randomF32(rand, c.nTok * qRow, 1.5);
  const kc = randomF32(rand, ctx * kvStride, 1.5), vc = randomF32(rand, ctx * kvStride, 1);
  kc.fill(NaN, rows * kvStride); // positions no query may see
  vc.fill(NaN, rows * kvStride);
  let vmax = 0;
  for (let i = 0; i < rows * kvStride; i++) vmax = Math.max(vmax, Math.abs(vc[i]!));
  return { q, kc, vc, kvStride, qRow, vmax, scale: fr(1 / Math.sqrt(c.headDim)) };
}

describe('attentionTiled', async () => {
  const bench = await kernelBench();
  type K = (typeof bench.builds)[number]['k'];
  const tileKeys = bench.scalar.attentionTileKeys();
  const wsBytes = bench.scalar.attentionTiledScratchBytes();

  /**
   * Runs `kernel` on case c as calls of [t0, t1) tokens x [h0, h1) heads (queries of one call at
   * positions pos0 + t0..), each with a fresh workspace of `scratchBytes` followed by a guard; returns
   * the output and whether every guard survived.
   */
  function run(k: K, kernel: 'attention' | 'attentionTiled', c: Case, calls: readonly (readonly [number, number, number, number])[], scratchBytes: number) {
    const { q, kc, vc, kvStride, qRow, scale } = inputs(c);
    bench.reset();
    const qp = bench.alloc(4 * q.length), kp = bench.alloc(4 * kc.length), vp = bench.alloc(4 * vc.length);
    const op = bench.alloc(4 * q.length);
    bench.f32(qp, q.length).set(q);
    bench.f32(kp, kc.length).set(kc);
    bench.f32(vp, vc.length).set(vc);
    bench.f32(op, q.length).fill(NaN);
    let guardsKept = true;
    for (const [t0, t1, h0, h1] of calls) {
      const scratch = bench.alloc(scratchBytes + 64);
      bench.f32(scratch, scratchBytes / 4).fill(NaN); // a workspace is not assumed clean
      bench.f32(scratch + scratchBytes, 16).fill(GUARD);
      k[kernel](qp + 4 * t0 * qRow, kp, vp, op + 4 * t0 * qRow, t1 - t0, c.nHeads, c.nKVHeads, c.headDim, kvStride, c.pos0 + t0, scale, scratch, h0, h1);
      guardsKept &&= bench.f32(scratch + scratchBytes, 16).every((v) => v === GUARD);
    }
    return { out: bench.f32(op, q.length).slice(), guardsKept };
  }
  const whole = (c: Case) => [[0, c.nTok, 0, c.nHeads]] as const;

  it('reports a workspace of a few tiles', () => {
    expect(tileKeys).toBe(128);
    for (const { k } of bench.builds) {
      expect(k.attentionTiledScratchBytes()).toBe(wsBytes);
      expect(k.attentionTileKeys()).toBe(tileKeys);
    }
    expect(wsBytes).toBeLessThanOrEqual(4 * (4 * tileKeys + 16));
  });

  it('queries within one key tile: the one-pass kernel\'s bits, in every build', () => {
    const cases: Case[] = [
      { nTok: 7, pos0: 0, nHeads: 4, nKVHeads: 2, headDim: 64, seed: 1 },
      { nTok: 9, pos0: 100, nHeads: 6, nKVHeads: 2, headDim: 48, seed: 2 },
      { nTok: 3, pos0: 125, nHeads: 7, nKVHeads: 1, headDim: 128, seed: 3 }, // the last query sees exactly 128 keys
      { nTok: 6, pos0: 5, nHeads: 3, nKVHeads: 3, headDim: 10, seed: 4 },
      { nTok: 1, pos0: 60, nHeads: 4, nKVHeads: 4, headDim: 64, seed: 5 }, // decode
    ];
    for (const c of cases) {
      expect(c.pos0 + c.nTok).toBeLessThanOrEqual(tileKeys);
      const want = attentionF64(inputs(c).q, inputs(c).kc, inputs(c).vc, c.nTok, c.nHeads, c.nKVHeads, c.headDim, c.pos0, inputs(c).scale);
      const scalar = run(bench.scalar, 'attentionTiled', c, whole(c), wsBytes).out;
      for (const { variant, k } of bench.builds) {
        const onePass = run(k, 'attention', c, whole(c), 4 * (c.pos0 + c.nTok)).out;
        const tiled = run(k, 'attentionTiled', c, whole(c), wsBytes);
        expect(tiled.guardsKept, `${variant}: workspace overrun`).toBe(true);
        expect(sameBits(tiled.out, onePass), `${variant} ${JSON.stringify(c)}: tiled vs one-pass`).toBe(true);
        expect(sameBits(tiled.out, scalar), `${variant} vs scalar`).toBe(true);
        expect(maxAbsDiff(tiled.out, want)).toBeLessThanOrEqual(1e-5 * inputs(c).vmax);
      }
    }
  });

  // Several key tiles, a position offset (keys already in the cache before the new queries), query
  // tiles cut short (nTok not a multiple of 4), GQA ratios 2, 3, 7 and 1, head dims with tails.
  const LONG: Case[] = [
    { nTok: 300, pos0: 0, nHeads: 4, nKVHeads: 2, headDim: 64, seed: 11 },
    { nTok: 37, pos0: 230, nHeads: 6, nKVHeads: 2, headDim: 48, seed: 12 },
    { nTok: 13, pos0: 250, nHeads: 7, nKVHeads: 1, headDim: 128, seed: 13 },
    { nTok: 150, pos0: 0, nHeads: 3, nKVHeads: 3, headDim: 10, seed: 14 },
    { nTok: 2, pos0: 398, nHeads: 2, nKVHeads: 1, headDim: 68, seed: 15 },
  ];

  it('several key tiles: within 3e-6 * max|v| of float64, simd = scalar bit for bit, workspace bounded', () => {
    let worst = 0;
    for (const c of LONG) {
      const inp = inputs(c);
      const want = attentionF64(inp.q, inp.kc, inp.vc, c.nTok, c.nHeads, c.nKVHeads, c.headDim, c.pos0, inp.scale);
      const outs = bench.builds.map(({ variant, k }) => [variant, run(k, 'attentionTiled', c, whole(c), wsBytes)] as const);
      for (const [variant, r] of outs) {
        expect(r.guardsKept, `${variant}: workspace overrun`).toBe(true);
        const err = maxAbsDiff(r.out, want) / inp.vmax;
        worst = Math.max(worst, err);
        expect(err, `${variant} ${JSON.stringify(c)} vs f64`).toBeLessThanOrEqual(3e-6);
        expect(sameBits(r.out, outs[0]![1].out), `${variant} ${JSON.stringify(c)} vs scalar`).toBe(true);
      }
    }
    expect(worst).toBeGreaterThan(0); // the comparison is not vacuous
  });

  it('takes the tiled path: the one-pass kernel would overrun the same workspace', () => {
    // More keys than the workspace has floats: a score per position cannot fit.
    const c: Case = { nTok: 20, pos0: 700, nHeads: 2, nKVHeads: 1, headDim: 16, seed: 16 };
    expect(4 * (c.pos0 + c.nTok)).toBeGreaterThan(wsBytes + 64);
    for (const { variant, k } of bench.builds) {
      expect(run(k, 'attention', c, whole(c), wsBytes).guardsKept, `${variant}: one-pass kernel in a tile workspace`).toBe(false);
      expect(run(k, 'attentionTiled', c, whole(c), wsBytes).guardsKept, variant).toBe(true);
    }
  });

  it('prefill then decode, token by token, and any split by heads give the same bits', () => {
    for (const c of [LONG[0]!, LONG[2]!]) {
      for (const { variant, k } of bench.builds) {
        const all = run(k, 'attentionTiled', c, whole(c), wsBytes).out;
        const oneByOne = Array.from({ length: c.nTok }, (_, t) => [t, t + 1, 0, c.nHeads] as const);
        const prefillDecode = [[0, c.nTok - 5, 0, c.nHeads] as const, ...oneByOne.slice(c.nTok - 5)];
        const byHeads = [[0, c.nTok, 0, 1], [0, c.nTok, 1, c.nHeads - 1], [0, c.nTok, c.nHeads - 1, c.nHeads]] as const;
        expect(sameBits(run(k, 'attentionTiled', c, oneByOne, wsBytes).out, all), `${variant}: token by token`).toBe(true);
        expect(sameBits(run(k, 'attentionTiled', c, prefillDecode, wsBytes).out, all), `${variant}: prefill then decode`).toBe(true);
        expect(sameBits(run(k, 'attentionTiled', c, byHeads, wsBytes).out, all), `${variant}: split by heads`).toBe(true);
      }
    }
  });

  it('writes only the heads it is given', () => {
    const c = LONG[1]!;
    const { out } = run(bench.builds[1]!.k, 'attentionTiled', c, [[0, c.nTok, 2, 4]], wsBytes);
    const all = run(bench.builds[1]!.k, 'attentionTiled', c, whole(c), wsBytes).out;
    for (let t = 0; t < c.nTok; t++) {
      for (let h = 0; h < c.nHeads; h++) {
        const at = (t * c.nHeads + h) * c.headDim;
        const row = out.subarray(at, at + c.headDim);
        if (h >= 2 && h < 4) expect(sameBits(row, all.subarray(at, at + c.headDim))).toBe(true);
        else expect(row.every(Number.isNaN), `head ${h} outside [2, 4) written`).toBe(true);
      }
    }
  });
});

describe('the model on a prompt longer than a key tile', () => {
  const opened: Model[] = [];
  afterAll(async () => {
    for (const m of opened) await m.close();
  });
  const tokens = Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 512);
  const bytes = synthModelBytes('tiny-llama', 'f32', 7);
  const open = async (options: LoadModelOptions): Promise<Model> => {
    const m = await loadModel(memoryStorage(await bytes, 'tiny-llama-f32'), { threads: 1, contextLength: 1024, ...options });
    opened.push(m);
    return m;
  };
  const transformerOf = (m: Model) => (m as unknown as { transformer: Transformer }).transformer;

  it('tiny-llama F32: attentionTiled, a context-free workspace, logits within 1e-5 of float64', async () => {
    const file = await readGGUF(memoryStorage(await bytes));
    const hp = readHParams(file);
    const model = await open({});
    const t = transformerOf(model);
    expect(t.attentionKernel).toBe('attentionTiled');
    // One tile workspace per head slot, not the (contextLength + 16) f32 of the one-pass kernel.
    expect(t.state.attnScratchStride).toBe(ATTENTION_TILED_SCRATCH_BYTES);
    expect(ATTENTION_TILED_SCRATCH_BYTES).toBe(t.kernels.attentionTiledScratchBytes());
    expect(t.state.attnScratchStride).toBeLessThan(4 * 1024);

    // Prefill in batches of 64 (five chunks: each chunk's queries continue after the cached keys).
    const ours = model.evaluate(tokens, { all: true });
    const ref = await ReferenceModel.load(file, memoryStorage(await bytes), hp);
    let worst = 0;
    for (let p = 0; p < tokens.length; p++) {
      const want = ref.step(tokens[p]!);
      if (p < 250 && p % 50 !== 0) continue;
      for (let i = 0; i < hp.vocabSize; i++) worst = Math.max(worst, Math.abs(ours[p * hp.vocabSize + i]! - want[i]!));
    }
    expect(worst).toBeLessThan(1e-5);
  }, 60_000);

  it('prefill then decode and token by token agree within 1e-5; 1, 2 and 3 threads give the same bits', async () => {
    const vocab = 512;
    const one = await open({});
    const batched = one.evaluate(tokens, { all: true });
    // Prefill 250 tokens (chunks of 64), then decode the last 50 one at a time on the same cache.
    const t = transformerOf(one);
    t.kv.truncate(0);
    const pre = t.forward(tokens.slice(0, 250), 'all')!;
    const continued = new Float32Array(tokens.length * vocab);
    continued.set(pre);
    for (let p = 250; p < tokens.length; p++) continued.set(t.forward([tokens[p]!], 'last')!, p * vocab);
    const tokenByToken = (await open({ batchSize: 1 })).evaluate(tokens, { all: true });
    expect(maxAbsDiff(continued, batched)).toBeLessThan(1e-5);
    expect(maxAbsDiff(tokenByToken, batched)).toBeLessThan(1e-5);
    for (const threads of [2, 3]) {
      const m = await open({ threads, parallel: { minParallelMs: 0 } });
      expect(m.executor.threads).toBe(threads);
      expect(sameBits(m.evaluate(tokens, { all: true }), batched), `${threads} threads`).toBe(true);
      expect(m.executor.stats().calls.attention.splitCalls, `${threads} threads: attention split by heads`).toBeGreaterThan(0);
    }
  }, 60_000);
});
