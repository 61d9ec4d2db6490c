// The reduced-precision KV cache kernels (assembly/ref/kv.ts, simd/kv.ts) in every build. Ceilings:
//   kvStoreF16: the bits of the engine's Float16Array rounding (exact)
//   kvStoreInt8 (values): scale = fround(max|x| / 127) per head, |q * scale - x| <= scale / 2; builds bit-identical
//   kvStoreInt8Keys: tail rows = the f16 bits of the keys; a complete block's channel minimum m = the
//     largest f16 <= the (f16) keys' minimum, step d = the smallest f16 >= (max - m) / 255,
//     |m + d * u - key| <= d / 2 (+ f32 rounding); the same blocks and tail rows whatever the batching
//     (the last partial block in the tail's second half after a batch that completed the open block),
//     the rows held before a batch untouched by it; builds bit-identical
//   attentionKvF16: bit-identical with the f32 `attention` kernel over the same (f16-exact) values
//   attentionKvInt8: vs an f64 attention over the dequantized cache (blocks and f16 tail), 1e-5 * max|v|;
//     builds bit-identical
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

  it('kvStoreInt8Keys: f16 tail, then blocks per channel within half a step; same bytes for any batching; every build alike', () => {
    const rand = prng(13);
    for (const [nKVHeads, headDim] of [[2, 8], [3, 6]] as const) {
      const kvDim = nKVHeads * headDim, rowBytes = 4 * nKVHeads + kvDim, tailBytes = 4 * headDim * kvDim;
      const held = 3 * headDim + 2;
      const complete = held - (held % headDim);
      const x = randomF32(rand, held * kvDim, 3);
      // A constant channel (step 0) and a channel with one huge value.
      for (let s = 0; s < held; s++) x[s * kvDim + 1] = 0.75;
      x[2 * kvDim + 3] = 200;
      const f16Rows = (from: number, to: number) => Uint16Array.from(x.subarray(from * kvDim, to * kvDim), toF16Bits);
      /** Stores x in these batches; returns the complete blocks' rows, then the last block's tail rows. */
      const stores = (k: KernelExports, batches: readonly number[]): Uint8Array => {
        bench.reset();
        const src = bench.alloc(4 * x.length), k0 = bench.alloc(tailBytes + held * rowBytes) + tailBytes;
        bench.f32(src, x.length).set(x);
        let pos = 0;
        for (const n of batches) {
          const open = pos - (pos % headDim);
          k.kvStoreInt8Keys(src + 4 * pos * kvDim, k0, nKVHeads, headDim, pos, n);
          // The open block's rows held before the batch are still in the tail's first half.
          expect(sameBits(bench.u16(k0 - tailBytes, (pos - open) * kvDim), f16Rows(open, pos)), `held rows before ${pos}`).toBe(true);
          pos += n;
          const last = pos - (pos % headDim);
          const second = last > open ? tailBytes / 2 : 0;
          if (pos === held) {
            const tail = bench.u8(k0 - tailBytes + second, (held - complete) * 2 * kvDim);
            return Uint8Array.from([...bench.u8(k0, complete * rowBytes), ...tail]);
          }
          // What the cache does after a batch: the last block's rows to the first half.
          if (second) bench.u8(k0 - tailBytes, (pos - last) * 2 * kvDim).set(bench.u8(k0 - tailBytes + second, (pos - last) * 2 * kvDim));
        }
        throw new Error('the batches do not add up to held');
      };
      const outs = bench.builds.flatMap(({ variant, k }) => [
        [`${variant} whole`, stores(k, [held])] as const,
        [`${variant} 1 by 1`, stores(k, Array.from({ length: held }, () => 1))] as const,
        [`${variant} 5, 2, ...`, stores(k, [5, 2, held - 7])] as const,
      ]);
      for (const [name, bytes] of outs) expect(sameBits(bytes, outs[0]![1]), `${name} vs scalar whole`).toBe(true);
      const out = outs[0]![1];
      const tailRows = new Uint16Array(out.buffer.slice(complete * rowBytes));
      expect(sameBits(tailRows, f16Rows(complete, held)), 'tail rows').toBe(true);
      // The blocks, as at offset tailBytes of the cache.
      const bytes = new Uint8Array(tailBytes + complete * rowBytes);
      bytes.set(out.subarray(0, complete * rowBytes), tailBytes);
      const view = new DataView(bytes.buffer);
      for (let b = 0; b < complete; b += headDim) {
        for (let h = 0; h < nKVHeads; h++) {
          for (let i = 0; i < headDim; i++) {
            const c = h * headDim + i;
            const col = Array.from({ length: headDim }, (_, j) => fromF16Bits(toF16Bits(x[(b + j) * kvDim + c]!)));
            const param = tailBytes + (b + i) * rowBytes + 4 * h;
            const m = fromF16Bits(view.getUint16(param + 2, true));
            const d = fromF16Bits(view.getUint16(param, true));
            const lo = Math.min(...col), step = fr((Math.max(...col) - m) / 255);
            // m: the f16 at or just below the minimum; d: the f16 at or just above the step.
            expect(m).toBeLessThanOrEqual(lo);
            expect(fromF16Bits(toF16Bits(lo)) <= lo ? m === fromF16Bits(toF16Bits(lo)) : m < lo).toBe(true);
            expect(d).toBeGreaterThanOrEqual(step);
            expect(fromF16Bits(toF16Bits(step)) >= step ? d === fromF16Bits(toF16Bits(step)) : d > step).toBe(true);
            if (c === 1) expect(d).toBe(0);
            for (let j = 0; j < headDim; j++) {
              const u = bytes[tailBytes + (b + j) * rowBytes + 4 * nKVHeads + c]!;
              expect(Math.abs(m + d * u - col[j]!), `block ${b} channel ${c} row ${j}`).toBeLessThanOrEqual(d / 2 + 1e-6 * Math.abs(col[j]!));
            }
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
  /** kRow0: offset in kBytes of key row 0 (the int8 key tail comes first). */
  function runAll(name: 'attention' | 'attentionKvF16' | 'attentionKvInt8', q: Float32Array, kBytes: Uint8Array, vBytes: Uint8Array, headDim: number, pos0 = 6, kRow0 = 0) {
    const scale = 1 / Math.sqrt(headDim);
    const scratchFloats = pos0 + nTok;
    const run = (k: KernelExports, ranges: readonly (readonly [number, number])[]): Float32Array => {
      bench.reset();
      const qp = bench.alloc(4 * q.length), kp = bench.alloc(kBytes.length) + kRow0, vp = bench.alloc(vBytes.length);
      const op = bench.alloc(4 * q.length);
      bench.f32(qp, q.length).set(q);
      bench.u8(kp - kRow0, kBytes.length).set(kBytes);
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

    // pos0 14 with headDim 8: the batch completes the open block, so the tail rows are in its second half.
    for (const p0 of [20, 14]) it(`int8 cache, headDim ${headDim}, pos0 ${p0}: f64 attention over the dequantized cache (key blocks and tail)`, () => {
      const rand = prng(40 + headDim + p0);
      const held = p0 + nTok, slots = held + 4;
      const kvStride = nKVHeads * headDim;
      const rowBytes = 4 * nKVHeads + kvStride;
      const complete = held - (held % headDim);
      const q = randomF32(rand, nTok * nHeads * headDim, 1.5);
      // Values: random int8 rows with random positive scales; positions past held get NaN scales.
      const vBytes = new Uint8Array(slots * rowBytes);
      const vView = new DataView(vBytes.buffer);
      const vDeq = new Float64Array(slots * kvStride);
      for (let s = 0; s < slots; s++) {
        for (let h = 0; h < nKVHeads; h++) {
          const d = s < held ? fr(0.002 + rand() * 0.02) : NaN;
          vView.setFloat32(s * rowBytes + 4 * h, d, true);
          for (let i = 0; i < headDim; i++) {
            const v = Math.floor(rand() * 255) - 127;
            vView.setInt8(s * rowBytes + 4 * nKVHeads + h * headDim + i, v);
            vDeq[s * kvStride + h * headDim + i] = v * d;
          }
        }
      }
      // Keys: the f16 tail (2 headDim rows, then row 0), the last block's rows in its first half, or in
      // its second when the batch completed the block open before it; complete blocks of random codes
      // with random f16 (step, minimum) per channel in rows i of the block. The tail's other rows and
      // rows past the complete blocks hold NaN, which would show if read.
      const tailBytes = 4 * headDim * kvStride;
      const kBytes = new Uint8Array(tailBytes + slots * rowBytes);
      const kView = new DataView(kBytes.buffer);
      const kDeq = new Float64Array(slots * kvStride);
      new Uint16Array(kBytes.buffer, 0, tailBytes / 2).fill(0x7e00);
      const half = complete > p0 - (p0 % headDim) ? headDim : 0;
      for (let s = complete; s < held; s++) {
        for (let c = 0; c < kvStride; c++) {
          const bits = toF16Bits((rand() - 0.5) * 6);
          kView.setUint16(2 * ((half + s - complete) * kvStride + c), bits, true);
          kDeq[s * kvStride + c] = fromF16Bits(bits);
        }
      }
      for (let s = complete; s < slots; s++) for (let h = 0; h < nKVHeads; h++) kView.setFloat32(tailBytes + s * rowBytes + 4 * h, NaN, true);
      for (let b = 0; b < complete; b += headDim) {
        for (let h = 0; h < nKVHeads; h++) {
          for (let i = 0; i < headDim; i++) {
            const dBits = toF16Bits(0.001 + rand() * 0.03), mBits = toF16Bits((rand() - 0.5) * 8);
            const param = tailBytes + (b + i) * rowBytes + 4 * h;
            kView.setUint16(param, dBits, true);
            kView.setUint16(param + 2, mBits, true);
            for (let j = 0; j < headDim; j++) {
              const u = Math.floor(rand() * 256);
              kBytes[tailBytes + (b + j) * rowBytes + 4 * nKVHeads + h * headDim + i] = u;
              kDeq[(b + j) * kvStride + h * headDim + i] = fromF16Bits(mBits) + fromF16Bits(dBits) * u;
            }
          }
        }
      }
      const runs = runAll('attentionKvInt8', q, kBytes, vBytes, headDim, p0, tailBytes);
      const vmax = Math.max(...vDeq.subarray(0, held * kvStride).map(Math.abs));
      const want = attentionF64(q, kDeq, vDeq, nTok, nHeads, nKVHeads, headDim, p0, 1 / Math.sqrt(headDim));
      for (const r of runs) {
        expect(maxAbsDiff(r.whole, want), `${r.variant} vs f64`).toBeLessThanOrEqual(1e-5 * vmax);
        expect(sameBits(r.whole, runs[0]!.whole), `${r.variant} vs scalar`).toBe(true);
        expect(sameBits(r.split, r.whole), `${r.variant} split by heads`).toBe(true);
      }
    });
  }
});
