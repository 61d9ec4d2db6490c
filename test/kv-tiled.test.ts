// The tiled attention kernels over f16 and int8 KV caches (attentionKvF16Tiled, attentionKvInt8Tiled:
// assembly/ref/kv-tiled.ts, simd/kv-tiled.ts) in every build. Error ceilings and rules:
//   a query seeing at most attentionTileKeys() keys: the one-pass kernels' bits (attentionKvF16 /
//     attentionKvInt8) exactly, so the kvf16 golden and the int8 logits do not move
//   more keys, vs float64 attention over the dequantized cache (f16 values; int8 key blocks m + d * u,
//     the f16 key tail, values q * d): 3e-6 * max|v| (the f32 tiled kernel's ceiling)
//   simd and relaxed vs the scalar twin: bit-identical; any split by heads: bit-identical
//   prefill then decode and token by token vs one call: bit-identical (int8: for calls that see the same
//     cache bytes, i.e. whose last key block ends at the same place; the int8 cache reads a key from its
//     f16 tail until its block fills, in the one-pass kernel too)
//   workspace: attentionKvTiledScratchBytes(headDim), whatever the context; a guard after it stays intact
//   model: tiny-llama with an f16 / int8 cache on a 300-token prompt runs the tiled kernel with that
//     workspace; 1, 2 and 3 threads give the same bits; f16: prefill then decode and token by token
//     within 1e-5 of the batched prefill (the matmuls' batching; attention itself is bit-identical)
import { afterAll, describe, expect, it } from 'vitest';
import { fromF16Bits, kernelBench, maxAbsDiff, prng, randomF32, toF16Bits } from './kernels-harness.js';
import type { KernelExports } from '../src/runtime/kernel-exports.js';
import { attentionF64 } from './support/attention-reference.js';
import { loadModel } from '../src/engine/load.js';
import type { LoadModelOptions } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import { kvTiledScratchBytes } from '../src/model/transformer.js';
import type { Transformer } from '../src/model/transformer.js';
import { memoryStorage } from '../src/storage/memory.js';
import { synthModelBytes } from './support/synth-model.js';

const fr = Math.fround;
const GUARD = -7;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

type Precision = 'f16' | 'int8';
interface Case {
  readonly precision: Precision;
  readonly nTok: number;
  readonly pos0: number;
  readonly nHeads: number;
  readonly nKVHeads: number;
  readonly headDim: number;
  readonly seed: number;
}

/**
 * A cache of held = pos0 + nTok positions with random contents, and its dequantized f64 values. int8:
 * key blocks up to complete = held - held % headDim, f16 key tail past it. layout(pos0, n) gives the
 * bytes a call (pos0, n) ending in the same key block reads: the tail in the half that call expects
 * (ref/kv.ts), rows past pos0 + n poisoned with NaN.
 */
function makeCache(c: Case) {
  const rand = prng(c.seed);
  const { headDim, nKVHeads } = c;
  const held = c.pos0 + c.nTok, slots = held + 3;
  const kvStride = nKVHeads * headDim;
  const kDeq = new Float64Array(slots * kvStride), vDeq = new Float64Array(slots * kvStride);
  if (c.precision === 'f16') {
    const kh = new Uint16Array(slots * kvStride), vh = new Uint16Array(slots * kvStride);
    // Some subnormal halves and signed zeros among them: the conversion's special paths.
    const special = () => (rand() < 0.5 ? 0x8000 : 0) | (rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 0x3ff));
    for (let i = 0; i < held * kvStride; i++) {
      kh[i] = i % 7 === 3 ? special() : toF16Bits((rand() - 0.5) * 3);
      vh[i] = i % 5 === 2 ? special() : toF16Bits((rand() - 0.5) * 2);
      kDeq[i] = fromF16Bits(kh[i]!);
      vDeq[i] = fromF16Bits(vh[i]!);
    }
    const layout = (_pos0: number, n: number) => {
      const k = kh.slice(), v = vh.slice();
      k.fill(0x7e00, n * kvStride);
      v.fill(0x7e00, n * kvStride);
      return { k: new Uint8Array(k.buffer), v: new Uint8Array(v.buffer), kRow0: 0 };
    };
    return { kDeq, vDeq, held, layout };
  }
  const rowBytes = 4 * nKVHeads + kvStride;
  const complete = held - (held % headDim);
  const vBytes = new Uint8Array(slots * rowBytes);
  const vView = new DataView(vBytes.buffer);
  for (let s = 0; s < held; s++) {
    for (let h = 0; h < nKVHeads; h++) {
      const d = fr(0.002 + rand() * 0.02);
      vView.setFloat32(s * rowBytes + 4 * h, d, true);
      for (let i = 0; i < headDim; i++) {
        const v = Math.floor(rand() * 255) - 127;
        vView.setInt8(s * rowBytes + 4 * nKVHeads + h * headDim + i, v);
        vDeq[s * kvStride + h * headDim + i] = v * d;
      }
    }
  }
  const tailBytes = 4 * headDim * kvStride;
  const blocks = new Uint8Array(tailBytes + slots * rowBytes);
  const bView = new DataView(blocks.buffer);
  for (let b = 0; b < complete; b += headDim) {
    for (let h = 0; h < nKVHeads; h++) {
      for (let i = 0; i < headDim; i++) {
        const dBits = toF16Bits(0.001 + rand() * 0.03), mBits = toF16Bits((rand() - 0.5) * 8);
        const param = tailBytes + (b + i) * rowBytes + 4 * h;
        bView.setUint16(param, dBits, true);
        bView.setUint16(param + 2, mBits, true);
        for (let j = 0; j < headDim; j++) {
          const u = Math.floor(rand() * 256);
          blocks[tailBytes + (b + j) * rowBytes + 4 * nKVHeads + h * headDim + i] = u;
          kDeq[(b + j) * kvStride + h * headDim + i] = fromF16Bits(mBits) + fromF16Bits(dBits) * u;
        }
      }
    }
  }
  const tailBits = new Uint16Array((held - complete) * kvStride);
  for (let i = 0; i < tailBits.length; i++) {
    tailBits[i] = toF16Bits((rand() - 0.5) * 6);
    kDeq[complete * kvStride + i] = fromF16Bits(tailBits[i]!);
  }
  const layout = (pos0: number, n: number) => {
    if (n !== held && (n - (n % headDim) !== complete || n < complete)) throw new Error(`test: a call ending at ${n} reads other key bytes than one ending at ${held}`);
    const k = blocks.slice();
    const kv = new DataView(k.buffer);
    new Uint16Array(k.buffer, 0, tailBytes / 2).fill(0x7e00);
    const half = complete > pos0 - (pos0 % headDim) ? headDim : 0;
    for (let s = complete; s < n; s++) {
      for (let c2 = 0; c2 < kvStride; c2++) kv.setUint16(2 * ((half + s - complete) * kvStride + c2), tailBits[(s - complete) * kvStride + c2]!, true);
    }
    const v = vBytes.slice();
    const vv = new DataView(v.buffer);
    for (let s = n; s < slots; s++) for (let h = 0; h < nKVHeads; h++) vv.setFloat32(s * rowBytes + 4 * h, NaN, true);
    return { k, v, kRow0: tailBytes };
  };
  return { kDeq, vDeq, held, layout };
}

/** Calls as [t0, t1, headStart, headEnd]: queries t0..t1-1 of the case (positions pos0 + t). */
type Call = readonly [number, number, number, number];

describe('tiled attention over f16 and int8 KV caches', async () => {
  const bench = await kernelBench();
  const kernelOf = (p: Precision, tiled: boolean) => (p === 'f16' ? (tiled ? 'attentionKvF16Tiled' : 'attentionKvF16') : tiled ? 'attentionKvInt8Tiled' : 'attentionKvInt8');

  function run(k: KernelExports, c: Case, tiled: boolean, calls: readonly Call[], cache = makeCache(c)) {
    const qRow = c.nHeads * c.headDim, kvStride = c.nKVHeads * c.headDim;
    const q = randomF32(prng(c.seed + 1000), c.nTok * qRow, 1.5);
    const wsBytes = tiled ? k.attentionKvTiledScratchBytes(c.headDim) : 4 * (c.pos0 + c.nTok);
    const out = new Float32Array(c.nTok * qRow).fill(NaN);
    let guardsKept = true;
    for (const [t0, t1, h0, h1] of calls) {
      bench.reset();
      const bytes = cache.layout(c.pos0 + t0, c.pos0 + t1);
      const qp = bench.alloc(4 * q.length), kp = bench.alloc(bytes.k.length) + bytes.kRow0, vp = bench.alloc(bytes.v.length);
      const op = bench.alloc(4 * q.length), ws = bench.alloc(wsBytes + 64);
      bench.f32(qp, q.length).set(q);
      bench.u8(kp - bytes.kRow0, bytes.k.length).set(bytes.k);
      bench.u8(vp, bytes.v.length).set(bytes.v);
      bench.f32(op, q.length).set(out);
      bench.f32(ws + wsBytes, 16).fill(GUARD);
      k[kernelOf(c.precision, tiled)](qp + 4 * t0 * qRow, kp, vp, op + 4 * t0 * qRow, t1 - t0, c.nHeads, c.nKVHeads, c.headDim, kvStride, c.pos0 + t0, fr(1 / Math.sqrt(c.headDim)), ws, h0, h1);
      guardsKept &&= bench.f32(ws + wsBytes, 16).every((v) => v === GUARD);
      out.set(bench.f32(op, q.length));
    }
    const want = attentionF64(q, cache.kDeq, cache.vDeq, c.nTok, c.nHeads, c.nKVHeads, c.headDim, c.pos0, fr(1 / Math.sqrt(c.headDim)));
    let vmax = 0;
    for (let i = 0; i < cache.held * kvStride; i++) vmax = Math.max(vmax, Math.abs(cache.vDeq[i]!));
    return { out, guardsKept, want, vmax };
  }
  const whole = (c: Case): Call[] => [[0, c.nTok, 0, c.nHeads]];

  // Queries seeing at most 128 keys: a whole prompt, a batch continuing the cache with a query tile cut
  // short, decode; GQA 2 and 3, head dims 8 (key blocks of 8), 10 (lane tails), 64.
  const SHORT: Case[] = [];
  for (const precision of ['f16', 'int8'] as const) {
    SHORT.push(
      { precision, nTok: 128, pos0: 0, nHeads: 4, nKVHeads: 2, headDim: 64, seed: 1 },
      { precision, nTok: 27, pos0: 101, nHeads: 6, nKVHeads: 2, headDim: 10, seed: 2 },
      { precision, nTok: 1, pos0: 127, nHeads: 4, nKVHeads: 1, headDim: 8, seed: 3 },
      { precision, nTok: 50, pos0: 14, nHeads: 2, nKVHeads: 2, headDim: 8, seed: 4 },
    );
  }

  it('up to attentionTileKeys() keys: the one-pass kernels\' bits, in every build', () => {
    expect(bench.scalar.attentionTileKeys()).toBe(128);
    for (const c of SHORT) {
      const cache = makeCache(c);
      for (const { variant, k } of bench.builds) {
        const onePass = run(k, c, false, whole(c), cache);
        const tiled = run(k, c, true, whole(c), cache);
        expect(tiled.guardsKept, `${variant} ${JSON.stringify(c)}: workspace overrun`).toBe(true);
        expect(sameBits(tiled.out, onePass.out), `${variant} ${JSON.stringify(c)}: tiled vs one-pass`).toBe(true);
        expect(maxAbsDiff(tiled.out, tiled.want), `${variant} ${JSON.stringify(c)} vs f64`).toBeLessThanOrEqual(3e-6 * tiled.vmax);
      }
    }
  });

  // Several key tiles; int8 key blocks straddling tiles (head dim 48, 10), GQA 1, 2, 3, 7.
  const LONG: Case[] = [];
  for (const precision of ['f16', 'int8'] as const) {
    LONG.push(
      { precision, nTok: 300, pos0: 0, nHeads: 4, nKVHeads: 2, headDim: 64, seed: 11 },
      { precision, nTok: 37, pos0: 230, nHeads: 6, nKVHeads: 2, headDim: 48, seed: 12 },
      { precision, nTok: 13, pos0: 250, nHeads: 7, nKVHeads: 1, headDim: 128, seed: 13 },
      { precision, nTok: 150, pos0: 0, nHeads: 3, nKVHeads: 3, headDim: 10, seed: 14 },
    );
  }

  it('several key tiles: within 3e-6 * max|v| of float64, simd = scalar bit for bit, workspace bounded', () => {
    let worst = 0;
    for (const c of LONG) {
      const cache = makeCache(c);
      const outs = bench.builds.map(({ variant, k }) => [variant, run(k, c, true, whole(c), cache)] as const);
      for (const [variant, r] of outs) {
        expect(r.guardsKept, `${variant}: workspace overrun`).toBe(true);
        const err = maxAbsDiff(r.out, r.want) / r.vmax;
        worst = Math.max(worst, err);
        expect(err, `${variant} ${JSON.stringify(c)} vs f64`).toBeLessThanOrEqual(3e-6);
        expect(sameBits(r.out, outs[0]![1].out), `${variant} ${JSON.stringify(c)} vs scalar`).toBe(true);
      }
    }
    expect(worst).toBeGreaterThan(0); // the comparison is not vacuous
  });

  it('prefill then decode, token by token, and any split by heads give the same bits', () => {
    for (const c of [LONG[0]!, LONG[2]!, LONG[4]!, LONG[5]!]) {
      const cache = makeCache(c);
      const held = c.pos0 + c.nTok;
      // int8: the prefill ends where the last key block starts, then the queries one by one (calls that
      // read the same cache bytes as the whole call); f16: any cut.
      const cut = c.precision === 'int8' ? held - (held % c.headDim) - c.pos0 : c.nTok - 5;
      const from = c.precision === 'int8' ? cut : Math.max(0, c.nTok - 40);
      const oneByOne = Array.from({ length: c.nTok - from }, (_, i) => [from + i, from + i + 1, 0, c.nHeads] as const);
      const prefillDecode: Call[] = [[0, cut, 0, c.nHeads], ...Array.from({ length: c.nTok - cut }, (_, i) => [cut + i, cut + i + 1, 0, c.nHeads] as const)];
      const byHeads: Call[] = [[0, c.nTok, 0, 1], [0, c.nTok, 1, c.nHeads - 1], [0, c.nTok, c.nHeads - 1, c.nHeads]];
      expect(cut).toBeGreaterThan(0);
      expect(c.nTok - cut).toBeGreaterThan(0);
      for (const { variant, k } of bench.builds) {
        const all = run(k, c, true, whole(c), cache).out;
        const tokens = run(k, c, true, oneByOne, cache).out;
        const at = from * c.nHeads * c.headDim;
        expect(sameBits(tokens.subarray(at), all.subarray(at)), `${variant} ${c.precision}: token by token`).toBe(true);
        expect(sameBits(run(k, c, true, prefillDecode, cache).out, all), `${variant} ${c.precision}: prefill then decode`).toBe(true);
        expect(sameBits(run(k, c, true, byHeads, cache).out, all), `${variant} ${c.precision}: split by heads`).toBe(true);
      }
    }
  });

  it('f16 values: every half bit pattern read back as the one-pass kernel reads it (one key: out = 1 * v)', () => {
    const headDim = 64, nKVHeads = 1024, nHeads = 1024, kvStride = nKVHeads * headDim;
    const vh = Uint16Array.from({ length: kvStride }, (_, i) => i);
    const kh = new Uint16Array(kvStride); // q.k = 0: one weight of exactly 1
    for (const { variant, k } of bench.builds) {
      const outs = (['attentionKvF16', 'attentionKvF16Tiled'] as const).map((name) => {
        bench.reset();
        const qp = bench.alloc(4 * kvStride), kp = bench.alloc(2 * kvStride), vp = bench.alloc(2 * kvStride), op = bench.alloc(4 * kvStride);
        const ws = bench.alloc(k.attentionKvTiledScratchBytes(headDim));
        bench.f32(qp, kvStride).fill(1);
        bench.u16(kp, kvStride).set(kh);
        bench.u16(vp, kvStride).set(vh);
        k[name](qp, kp, vp, op, 1, nHeads, nKVHeads, headDim, kvStride, 0, 1, ws, 0, nHeads);
        return bench.f32(op, kvStride).slice();
      });
      expect(sameBits(outs[1]!, outs[0]!), `${variant}: tiled vs one-pass`).toBe(true);
      for (let i = 0; i < kvStride; i++) {
        const want = fromF16Bits(i);
        if (Number.isNaN(want)) expect(Number.isNaN(outs[1]![i]!), `${variant} half 0x${i.toString(16)}`).toBe(true);
        else if (outs[1]![i] !== want) expect(outs[1]![i], `${variant} half 0x${i.toString(16)}`).toBe(want);
      }
    }
  });

  it('workspace: a few tiles whatever the context (the one-pass kernels overrun it past its size in scores)', () => {
    for (const headDim of [8, 64, 128]) {
      expect(bench.scalar.attentionKvTiledScratchBytes(headDim)).toBe(2112 + 16 + 16 * headDim);
    }
    const c: Case = { precision: 'f16', nTok: 4, pos0: 900, nHeads: 2, nKVHeads: 1, headDim: 16, seed: 21 };
    const ws = bench.scalar.attentionKvTiledScratchBytes(c.headDim);
    expect(4 * (c.pos0 + c.nTok)).toBeGreaterThan(ws + 64);
    for (const { variant, k } of bench.builds) {
      const r = run(k, c, true, whole(c));
      expect(r.guardsKept, variant).toBe(true);
      expect(maxAbsDiff(r.out, r.want), variant).toBeLessThanOrEqual(3e-6 * r.vmax);
    }
  });
});

describe('the model with an f16 or int8 cache on a prompt longer than a key tile', () => {
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

  for (const kvCache of ['f16', 'int8'] as const) {
    it(`${kvCache}: the tiled kernel with a context-free workspace; 1, 2 and 3 threads give the same bits`, async () => {
      const one = await open({ kvCache });
      const t = transformerOf(one);
      expect(t.attentionKernel).toBe(kvCache === 'f16' ? 'attentionKvF16Tiled' : 'attentionKvInt8Tiled');
      expect(t.state.attnScratchStride).toBe(kvTiledScratchBytes(t.hp.headDim));
      expect(t.state.attnScratchStride).toBe(t.kernels.attentionKvTiledScratchBytes(t.hp.headDim));
      expect(t.state.attnScratchStride).toBeLessThan(4 * (t.kv.contextLength + 16));
      const batched = one.evaluate(tokens, { all: true });
      expect(batched.every(Number.isFinite)).toBe(true);
      if (kvCache === 'f16') {
        const vocab = t.hp.vocabSize;
        t.kv.truncate(0);
        const continued = new Float32Array(tokens.length * vocab);
        continued.set(t.forward(tokens.slice(0, 250), 'all')!);
        for (let p = 250; p < tokens.length; p++) continued.set(t.forward([tokens[p]!], 'last')!, p * vocab);
        const tokenByToken = (await open({ kvCache, batchSize: 1 })).evaluate(tokens, { all: true });
        expect(maxAbsDiff(continued, batched)).toBeLessThan(1e-5);
        expect(maxAbsDiff(tokenByToken, batched)).toBeLessThan(1e-5);
      }
      for (const threads of [2, 3]) {
        const m = await open({ kvCache, threads, parallel: { minParallelMs: 0 } });
        expect(m.executor.threads).toBe(threads);
        expect(sameBits(m.evaluate(tokens, { all: true }), batched), `${threads} threads`).toBe(true);
        expect(m.executor.stats().calls.attention.splitCalls, `${threads} threads: attention split by heads`).toBeGreaterThan(0);
      }
    }, 60_000);
  }
});
