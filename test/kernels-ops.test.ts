// Elementwise, rope and attention kernels in every build against small float64 references written
// here, and the SIMD builds against the scalar twin. Error ceilings:
//   rmsNorm   vs f64: 1e-6 relative; simd vs scalar: bit-identical (same f32 steps, same f64 sum order)
//   siluMul   (llama.cpp's ggml_v_expf on every value) vs f64: 2e-6 relative; any split of a range gives
//             the same bits; every build gives the scalar twin's bits (simd in f64 lanes, relaxed in f32x4
//             with fused relaxed_madd)
//   siluMulRows (ggml_vec_swiglu_f32 per row: ggml_v_expf on each row's whole groups of 16, the C
//             library's expf on the rest): the groups equal siluMul, each row's tail exactly
//             f32(x / (1 + f32(exp(-x)))) * up
//   addRows, addBias, scaleRows: bit-identical to the f32 operation
//   rope      vs llama.cpp's f32 theta recurrence (emulated with Math.fround, trig in f64): 2e-6 * max|x|;
//             vs exact f64 angles: 3e-4 * max|x| for positions < 64 (the f32 recurrence drifts);
//             every build runs the same scalar code: bit-identical
//   attention vs f64: 1e-5 * max|v|; simd vs scalar: bit-identical (q.k in the same four-lane order)
import { describe, expect, it } from 'vitest';
import { kernelBench, maxAbsDiff, prng, randomF32 } from './kernels-harness.js';
import { attentionF64 } from './support/attention-reference.js';

const fr = Math.fround;

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 1e-30));
  return m;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('elementwise kernels', async () => {
  const bench = await kernelBench();

  it('rmsNorm, with and without weight', () => {
    const rand = prng(1);
    const cols = 67, nTok = 3, eps = 1e-5;
    const x = randomF32(rand, cols * nTok, 3), w = randomF32(rand, cols, 1);
    for (const withWeight of [true, false]) {
      const want = new Float64Array(cols * nTok);
      for (let t = 0; t < nTok; t++) {
        let ss = 0;
        for (let i = 0; i < cols; i++) ss += x[t * cols + i]! ** 2;
        const scale = 1 / Math.sqrt(ss / cols + eps);
        for (let i = 0; i < cols; i++) want[t * cols + i] = x[t * cols + i]! * scale * (withWeight ? w[i]! : 1);
      }
      const outs = bench.builds.map(({ variant, k }) => {
        bench.reset();
        const xp = bench.alloc(4 * x.length), wp = bench.alloc(4 * cols), op = bench.alloc(4 * x.length);
        bench.f32(xp, x.length).set(x);
        bench.f32(wp, cols).set(w);
        k.rmsNorm(xp, withWeight ? wp : 0, op, cols, nTok, eps);
        return [variant, bench.f32(op, x.length).slice()] as const;
      });
      for (const [variant, out] of outs) {
        expect(relErr(out, want), `${variant} vs f64`).toBeLessThan(1e-6);
        expect(sameBits(out, outs[0]![1]), `${variant} vs scalar`).toBe(true);
      }
    }
  });

  it('siluMul, across the exp domain, the same bits however the range is split', () => {
    const n = 203;
    const gate = randomF32(prng(2), n, 6), up = randomF32(prng(3), n, 2);
    gate.set([0, -0, 1e-8, -30, 30, -87, -88, -89, 88, 89, -100, 100, 1000, -1000]);
    const want = [...gate].map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
    const outs = bench.builds.map(({ variant, k }) => {
      bench.reset();
      const gp = bench.alloc(4 * n), upp = bench.alloc(4 * n), op = bench.alloc(4 * n), split = bench.alloc(4 * n);
      bench.f32(gp, n).set(gate);
      bench.f32(upp, n).set(up);
      k.siluMul(gp, upp, op, n);
      for (const [a, b] of [[0, 7], [7, 100], [100, n]]) k.siluMul(gp + 4 * a, upp + 4 * a, split + 4 * a, b - a);
      expect(sameBits(bench.f32(split, n), bench.f32(op, n)), `${variant} split`).toBe(true);
      return [variant, bench.f32(op, n).slice()] as const;
    });
    for (const [variant, out] of outs) {
      for (let i = 0; i < n; i++) {
        expect(Math.abs(out[i]! - want[i]!), `${variant} gate ${gate[i]}`).toBeLessThanOrEqual(2e-6 * Math.abs(want[i]!) + 1e-30);
      }
      expect(sameBits(out, outs[0]![1]), `${variant} vs scalar`).toBe(true);
    }
  });

  it('siluMul: every build gives the scalar bits over a dense sweep, across the range edges of 2^n', () => {
    // The relaxed build computes in f32x4 while 2^n is a normal f32 (-126 <= n <= 127, about
    // -88 < gate < 87.3) and falls back to the f64 form per vector of four otherwise: sweep both sides
    // of those edges, mixing in-range and out-of-range values within one vector.
    const values: number[] = [];
    for (let i = 0; i < 4000; i++) values.push(fr(-100 + (200 * i) / 4000));
    for (const edge of [-87.33654, -88.02969, 87.33654, 88.72284, -86, 86]) {
      for (let k = -40; k <= 40; k++) values.push(fr(edge + k * 1e-4));
    }
    const rand = prng(11);
    for (let i = 0; i < 4000; i++) values.push(fr((rand() - 0.5) * 2 ** (Math.floor(rand() * 12) - 4)));
    const n = values.length;
    const gate = Float32Array.from(values), up = randomF32(prng(12), n, 2);
    const outs = bench.builds.map(({ variant, k }) => {
      bench.reset();
      const gp = bench.alloc(4 * n), upp = bench.alloc(4 * n), op = bench.alloc(4 * n);
      bench.f32(gp, n).set(gate);
      bench.f32(upp, n).set(up);
      k.siluMul(gp, upp, op, n);
      return [variant, bench.f32(op, n).slice()] as const;
    });
    for (const [variant, out] of outs) {
      for (let i = 0; i < n; i++) expect(Object.is(out[i], outs[0]![1][i]), `${variant} gate ${gate[i]}`).toBe(true);
    }
  });

  it('siluMulRows: per row, siluMul on the whole groups of 16 and the C library exp on the rest', () => {
    const cols = 172, nTok = 3, n = cols * nTok, vecEnd = cols & ~15;
    const gate = randomF32(prng(7), n, 6), up = randomF32(prng(8), n, 2);
    gate.set([-30, 30, -88, 88, 1e-8, -100, 100, -1000, 1000], cols + vecEnd);
    const outs = bench.builds.map(({ variant, k }) => {
      bench.reset();
      const gp = bench.alloc(4 * n), upp = bench.alloc(4 * n), rows = bench.alloc(4 * n), flat = bench.alloc(4 * n);
      bench.f32(gp, n).set(gate);
      bench.f32(upp, n).set(up);
      k.siluMulRows(gp, upp, rows, cols, nTok);
      k.siluMul(gp, upp, flat, n);
      const r = bench.f32(rows, n).slice(), f = bench.f32(flat, n);
      for (let i = 0; i < n; i++) {
        if (i % cols < vecEnd) expect(Object.is(r[i], f[i]), `${variant} ${i}: ggml_v_expf part`).toBe(true);
        else expect(r[i], `${variant} ${i}: row tail`).toBe(fr(fr(gate[i]! / fr(1 + fr(Math.exp(-gate[i]!)))) * up[i]!));
      }
      return [variant, r] as const;
    });
    for (const [variant, out] of outs) expect(sameBits(out, outs[0]![1]), `${variant} vs scalar`).toBe(true);
  });

  it('addRows, addBias and scaleRows are the plain f32 operations', () => {
    const rand = prng(4);
    const cols = 37, nTok = 3, n = cols * nTok;
    const a = randomF32(rand, n), b = randomF32(rand, n), bias = randomF32(rand, cols);
    const s = fr(0.37);
    for (const { variant, k } of bench.builds) {
      bench.reset();
      const ap = bench.alloc(4 * n), bp = bench.alloc(4 * n), biasp = bench.alloc(4 * cols);
      bench.f32(ap, n).set(a);
      bench.f32(bp, n).set(b);
      bench.f32(biasp, cols).set(bias);
      k.addRows(ap, bp, n);
      expect(sameBits(bench.f32(ap, n), Float32Array.from(a, (v, i) => v + b[i]!)), `${variant} addRows`).toBe(true);
      bench.f32(ap, n).set(a);
      k.addBias(ap, biasp, cols, nTok);
      expect(sameBits(bench.f32(ap, n), Float32Array.from(a, (v, i) => v + bias[i % cols]!)), `${variant} addBias`).toBe(true);
      bench.f32(ap, n).set(a);
      k.scaleRows(ap, s, n);
      expect(sameBits(bench.f32(ap, n), Float32Array.from(a, (v) => v * s)), `${variant} scaleRows`).toBe(true);
    }
  });
});

describe('rope', async () => {
  const bench = await kernelBench();
  const nTok = 4, nHeads = 3, headDim = 16, nRot = 12;
  const positions = [0, 5, 17, 63];
  const freqBase = 10000, freqScale = 0.5;
  const factors = Float32Array.from({ length: nRot / 2 }, (_, i) => 1 + 0.5 * i);

  for (const neox of [false, true]) {
    for (const withFactors of [false, true]) {
      it(`${neox ? 'neox' : 'norm'} pairs, ${withFactors ? 'with' : 'without'} frequency factors`, () => {
        const x = randomF32(prng(5), nTok * nHeads * headDim, 1);
        const xmax = Math.max(...x.map(Math.abs));
        /** angle(p) per token: `emulate` follows llama.cpp's f32 recurrence, else exact f64. */
        const reference = (emulate: boolean): Float64Array => {
          const y = Float64Array.from(x);
          const thetaScale = fr(Math.pow(freqBase, -2 / nRot));
          for (let t = 0; t < nTok; t++) {
            let theta = fr(positions[t]!);
            for (let p = 0; p < nRot / 2; p++) {
              const ff = withFactors ? factors[p]! : 1;
              const angle = emulate ? fr(fr(freqScale) * fr(theta / ff)) : (positions[t]! * freqBase ** (-2 * p / nRot) * freqScale) / ff;
              theta = fr(theta * thetaScale);
              const [c, s] = [Math.cos(angle), Math.sin(angle)];
              for (let h = 0; h < nHeads; h++) {
                const o = (t * nHeads + h) * headDim;
                const [i0, i1] = neox ? [o + p, o + p + nRot / 2] : [o + 2 * p, o + 2 * p + 1];
                const a = x[i0]!, b = x[i1]!;
                y[i0] = a * c - b * s;
                y[i1] = a * s + b * c;
              }
            }
          }
          return y;
        };
        const outs = bench.builds.map(({ variant, k }) => {
          bench.reset();
          const xp = bench.alloc(4 * x.length), pp = bench.alloc(4 * nTok), fp = bench.alloc(4 * factors.length);
          bench.f32(xp, x.length).set(x);
          bench.i32(pp, nTok).set(positions);
          bench.f32(fp, factors.length).set(factors);
          (neox ? k.ropeNeox : k.ropeNorm)(xp, nTok, nHeads, headDim, nRot, pp, freqBase, freqScale, withFactors ? fp : 0);
          return [variant, bench.f32(xp, x.length).slice()] as const;
        });
        const emulated = reference(true), exact = reference(false);
        for (const [variant, out] of outs) {
          expect(maxAbsDiff(out, emulated), `${variant} vs f32 recurrence`).toBeLessThanOrEqual(2e-6 * xmax);
          expect(maxAbsDiff(out, exact), `${variant} vs exact angles`).toBeLessThanOrEqual(3e-4 * xmax);
          expect(sameBits(out, outs[0]![1]), `${variant} vs scalar`).toBe(true);
          for (let r = 0; r < nTok * nHeads; r++) {
            for (let i = nRot; i < headDim; i++) expect(out[r * headDim + i]).toBe(x[r * headDim + i]); // past nRot: untouched
          }
        }
      });
    }
  }
});

describe('attention', async () => {
  const bench = await kernelBench();

  it('causal grouped-query attention, whole and split by heads', () => {
    const rand = prng(6);
    const nTok = 3, nHeads = 4, nKVHeads = 2, headDim = 10, pos0 = 5, ctx = 9;
    const kvStride = nKVHeads * headDim, qRow = nHeads * headDim;
    const scale = 1 / Math.sqrt(headDim);
    const q = randomF32(rand, nTok * qRow, 1.5);
    const kc = randomF32(rand, ctx * kvStride, 1.5), vc = randomF32(rand, ctx * kvStride, 1);
    kc.fill(NaN, (pos0 + nTok) * kvStride); // positions no query may see
    vc.fill(NaN, (pos0 + nTok) * kvStride);
    const vmax = Math.max(...vc.subarray(0, (pos0 + nTok) * kvStride).map(Math.abs));

    const want = attentionF64(q, kc, vc, nTok, nHeads, nKVHeads, headDim, pos0, scale);

    const scratchFloats = pos0 + nTok; // what the kernel documents it needs
    const run = (k: (typeof bench.builds)[number]['k'], ranges: readonly (readonly [number, number])[]): Float32Array => {
      bench.reset();
      const qp = bench.alloc(4 * q.length), kp = bench.alloc(4 * kc.length), vp = bench.alloc(4 * vc.length);
      const op = bench.alloc(4 * q.length);
      bench.f32(qp, q.length).set(q);
      bench.f32(kp, kc.length).set(kc);
      bench.f32(vp, vc.length).set(vc);
      bench.f32(op, q.length).fill(NaN);
      for (const [h0, h1] of ranges) {
        const scratch = bench.alloc(4 * scratchFloats + 64);
        bench.f32(scratch + 4 * scratchFloats, 16).fill(-7); // guard just past the stated need
        k.attention(qp, kp, vp, op, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, fr(scale), scratch, h0, h1);
        expect([...bench.f32(scratch + 4 * scratchFloats, 16)].every((v) => v === -7), 'scratch overrun').toBe(true);
      }
      return bench.f32(op, q.length).slice();
    };

    const outs = bench.builds.map(({ variant, k }) => [variant, run(k, [[0, nHeads]]), run(k, [[0, 1], [1, 4]]), run(k, [[1, 3]])] as const);
    for (const [variant, whole, split, partial] of outs) {
      expect(maxAbsDiff(whole, want), `${variant} vs f64`).toBeLessThanOrEqual(1e-5 * vmax);
      expect(sameBits(whole, outs[0]![1]), `${variant} vs scalar`).toBe(true);
      expect(sameBits(split, whole), `${variant} split by heads`).toBe(true);
      for (let t = 0; t < nTok; t++) {
        for (let h = 0; h < nHeads; h++) {
          const row = partial.subarray(t * qRow + h * headDim, t * qRow + (h + 1) * headDim);
          if (h >= 1 && h < 3) expect(sameBits(row, whole.subarray(t * qRow + h * headDim, t * qRow + (h + 1) * headDim))).toBe(true);
          else expect(row.every(Number.isNaN), `${variant}: head ${h} outside [1, 3) written`).toBe(true);
        }
      }
    }
  });
});
