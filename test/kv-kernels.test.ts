// The reduced-precision KV cache kernels (assembly/ref/kv.ts, simd/kv.ts) in every build. Ceilings:
//   kvStoreF16: the bits of the engine's Float16Array rounding (exact)
//   kvStoreInt8: scale = fround(max|x| / 127) per head, |q * scale - x| <= scale / 2; builds bit-identical
//   attentionKvF16: bit-identical with the f32 `attention` kernel over the same (f16-exact) values
//   attentionKvInt8: vs an f64 attention over the dequantized cache, 1e-5 * max|v|; builds bit-identical
//   both: split by heads bit-identical with the whole call, scratch within the documented pos0 + nTok f32
import { describe, expect, it } from 'vitest';
import { fromF16Bits, kernelBench, maxAbsDiff, prng, randomF32, toF16Bits } from './kernels-harness.js';
import type { KernelExports } from '../src/runtime/kernel-exports.js';
import { attentionF64 } from './support/attention-reference.js';

const fr = Math.fround;

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}


describe('KV cache store kernels', async () => {
  const bench = await kernelBench();

  it('kvStoreF16 rounds like Float16Array, including specials and subnormals', () => {
    const rand = prng(11);
    const x = randomF32(rand, 3 * 40, 4);
    x.set([0, -0, 65504, 65520, 1e-7, -3e-5, Infinity, -Infinity, NaN, 6.1e-5], 0);
    for (const { variant, k } of bench.builds) {
      bench.reset();
      const src = bench.alloc(4 * x.length), dst = bench.alloc(2 * x.length);
      bench.f32(src, x.length).set(x);
      k.kvStoreF16(src, dst, 40, 3);
      const got = bench.u16(dst, x.length);
      for (let i = 0; i < x.length; i++) {
        if (Number.isNaN(x[i]!)) expect(Number.isNaN(fromF16Bits(got[i]!)), `${variant} NaN`).toBe(true);
        else expect(got[i], `${variant} value ${x[i]}`).toBe(toF16Bits(x[i]!));
      }
    }
  });

  it('kvStoreInt8: one scale per token and head, values within half a step; every build alike', () => {
    const rand = prng(12);
    for (const [nKVHeads, headDim] of [[4, 8], [2, 10], [3, 64]] as const) {
      const nTok = 5, kvDim = nKVHeads * headDim;
      const rowBytes = 4 * nKVHeads + kvDim;
      const x = randomF32(rand, nTok * kvDim, 2);
      x.fill(0, kvDim, kvDim + headDim); // an all-zero head: scale 0, values 0
      const outs = bench.builds.map(({ variant, k }) => {
        bench.reset();
        const src = bench.alloc(4 * x.length), dst = bench.alloc(nTok * rowBytes);
        bench.f32(src, x.length).set(x);
        k.kvStoreInt8(src, dst, nKVHeads, headDim, nTok);
        return [variant, bench.u8(dst, nTok * rowBytes).slice()] as const;
      });
      for (const [variant, bytes] of outs) {
        expect(sameBits(bytes, outs[0]![1]), `${variant} vs scalar`).toBe(true);
      }
      const bytes = outs[0]![1];
      const view = new DataView(bytes.buffer);
      for (let t = 0; t < nTok; t++) {
        for (let h = 0; h < nKVHeads; h++) {
          const head = x.subarray(t * kvDim + h * headDim, t * kvDim + (h + 1) * headDim);
          const amax = Math.max(...head.map(Math.abs));
          const d = view.getFloat32(t * rowBytes + 4 * h, true);
          expect(d).toBe(fr(amax / 127));
          for (let i = 0; i < headDim; i++) {
            const qv = view.getInt8(t * rowBytes + 4 * nKVHeads + h * headDim + i);
            expect(Math.abs(qv)).toBeLessThanOrEqual(127);
            expect(Math.abs(qv * d - head[i]!)).toBeLessThanOrEqual(d / 2 + 1e-6 * amax);
          }
        }
      }
    }
  });
});

describe('attention over f16 and int8 KV caches', async () => {
  const bench = await kernelBench();
  const nTok = 3, nHeads = 4, nKVHeads = 2, pos0 = 6, ctx = 11;

  /** Runs `kernel` of every build, whole and split by heads; returns each build's outputs. */
  function runAll(name: 'attention' | 'attentionKvF16' | 'attentionKvInt8', q: Float32Array, kBytes: Uint8Array, vBytes: Uint8Array, headDim: number) {
    const scale = 1 / Math.sqrt(headDim);
    const scratchFloats = pos0 + nTok;
    const run = (k: KernelExports, ranges: readonly (readonly [number, number])[]): Float32Array => {
      bench.reset();
      const qp = bench.alloc(4 * q.length), kp = bench.alloc(kBytes.length), vp = bench.alloc(vBytes.length);
      const op = bench.alloc(4 * q.length);
      bench.f32(qp, q.length).set(q);
      bench.u8(kp, kBytes.length).set(kBytes);
      bench.u8(vp, vBytes.length).set(vBytes);
      bench.f32(op, q.length).fill(NaN);
      for (const [h0, h1] of ranges) {
        const scratch = bench.alloc(4 * scratchFloats + 64);
        bench.f32(scratch + 4 * scratchFloats, 16).fill(-7);
        k[name](qp, kp, vp, op, nTok, nHeads, nKVHeads, headDim, nKVHeads * headDim, pos0, fr(scale), scratch, h0, h1);
        expect([...bench.f32(scratch + 4 * scratchFloats, 16)].every((v) => v === -7), 'scratch overrun').toBe(true);
      }
      return bench.f32(op, q.length).slice();
    };
    return bench.builds.map(({ variant, k }) => ({ variant, whole: run(k, [[0, nHeads]]), split: run(k, [[0, 1], [1, 4]]) }));
  }

  for (const headDim of [8, 10]) {
    it(`f16 cache, headDim ${headDim}: the f32 kernel's bits over the same values`, () => {
      const rand = prng(20 + headDim);
      const kvStride = nKVHeads * headDim;
      const q = randomF32(rand, nTok * nHeads * headDim, 1.5);
      const kh = new Uint16Array(ctx * kvStride), vh = new Uint16Array(ctx * kvStride);
      const kf = new Float32Array(ctx * kvStride), vf = new Float32Array(ctx * kvStride);
      const kr = randomF32(rand, ctx * kvStride, 1.5), vr = randomF32(rand, ctx * kvStride, 1);
      for (let i = 0; i < kr.length; i++) {
        kh[i] = toF16Bits(kr[i]!);
        vh[i] = toF16Bits(vr[i]!);
        kf[i] = fromF16Bits(kh[i]!);
        vf[i] = fromF16Bits(vh[i]!);
      }
      // Positions past pos0 + nTok must not be read: NaN there would show.
      kh.fill(0x7e00, (pos0 + nTok) * kvStride);
      vh.fill(0x7e00, (pos0 + nTok) * kvStride);
      kf.fill(NaN, (pos0 + nTok) * kvStride);
      vf.fill(NaN, (pos0 + nTok) * kvStride);
      const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      const f32Runs = runAll('attention', q, u8(kf), u8(vf), headDim);
      const f16Runs = runAll('attentionKvF16', q, u8(kh), u8(vh), headDim);
      const vmax = Math.max(...vf.subarray(0, (pos0 + nTok) * kvStride).map(Math.abs));
      const want = attentionF64(q, kf, vf, nTok, nHeads, nKVHeads, headDim, pos0, 1 / Math.sqrt(headDim));
      for (const [i, r] of f16Runs.entries()) {
        expect(maxAbsDiff(r.whole, want), `${r.variant} vs f64`).toBeLessThanOrEqual(1e-5 * vmax);
        expect(sameBits(r.whole, f32Runs[i]!.whole), `${r.variant} vs f32 attention`).toBe(true);
        expect(sameBits(r.whole, f16Runs[0]!.whole), `${r.variant} vs scalar`).toBe(true);
        expect(sameBits(r.split, r.whole), `${r.variant} split by heads`).toBe(true);
      }
    });

    it(`int8 cache, headDim ${headDim}: f64 attention over the dequantized cache`, () => {
      const rand = prng(40 + headDim);
      const kvStride = nKVHeads * headDim;
      const rowBytes = 4 * nKVHeads + kvStride;
      const q = randomF32(rand, nTok * nHeads * headDim, 1.5);
      // Random int8 rows with random positive scales; positions past pos0 + nTok get NaN scales.
      const makeCache = (): { bytes: Uint8Array; deq: Float64Array } => {
        const bytes = new Uint8Array(ctx * rowBytes);
        const view = new DataView(bytes.buffer);
        const deq = new Float64Array(ctx * kvStride);
        for (let s = 0; s < ctx; s++) {
          for (let h = 0; h < nKVHeads; h++) {
            const d = s < pos0 + nTok ? fr(0.002 + rand() * 0.02) : NaN;
            view.setFloat32(s * rowBytes + 4 * h, d, true);
            for (let i = 0; i < headDim; i++) {
              const v = Math.floor(rand() * 255) - 127;
              view.setInt8(s * rowBytes + 4 * nKVHeads + h * headDim + i, v);
              deq[s * kvStride + h * headDim + i] = v * d;
            }
          }
        }
        return { bytes, deq };
      };
      const kc = makeCache(), vc = makeCache();
      const runs = runAll('attentionKvInt8', q, kc.bytes, vc.bytes, headDim);
      const vmax = Math.max(...vc.deq.subarray(0, (pos0 + nTok) * kvStride).map(Math.abs));
      const want = attentionF64(q, kc.deq, vc.deq, nTok, nHeads, nKVHeads, headDim, pos0, 1 / Math.sqrt(headDim));
      for (const r of runs) {
        expect(maxAbsDiff(r.whole, want), `${r.variant} vs f64`).toBeLessThanOrEqual(1e-5 * vmax);
        expect(sameBits(r.whole, runs[0]!.whole), `${r.variant} vs scalar`).toBe(true);
        expect(sameBits(r.split, r.whole), `${r.variant} split by heads`).toBe(true);
      }
    });
  }
});
