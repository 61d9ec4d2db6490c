// Activation conversion (f32 rows to Q8_0, Q8_1, Q8_K, F16, BF16) in every build, byte for byte
// against references we did not write where they exist: the engine's Float16Array for f32 -> f16,
// src/quant (written from llama.cpp's quantize_row_q8_K_ref and ggml_compute_fp32_to_bf16) for Q8_K
// and BF16. Q8_0/Q8_1 follow llama.cpp's AVX quantize_row_q8_0/q8_1 (d = amax/127, quants
// x*(127/amax) rounded half to even, s = d*sum(q)), re-derived below from that description.
import { describe, expect, it } from 'vitest';
import { GGMLType } from '../src/quant/formats.js';
import { quantizeRow } from '../src/quant/quantize.js';
import { f32ToBF16 } from '../src/quant/f16.js';
import type { KernelExports } from '../src/runtime/kernel-exports.js';
import { kernelBench, prng, randomF32, toF16Bits, type KernelBench } from './kernels-harness.js';

const f = Math.fround;

function roundHalfEven(v: number): number {
  const r = Math.round(v); // half up
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** llama.cpp's x86 Q8_0 (sum = false) / Q8_1 (sum = true) blocks of one f32 row. */
function q8Reference(x: Float32Array, withSum: boolean): Uint8Array {
  const bytesPerBlock = withSum ? 36 : 34;
  const out = new Uint8Array((x.length / 32) * bytesPerBlock);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    const o = b * bytesPerBlock;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]!));
    const d = f(amax / 127);
    const id = amax !== 0 ? f(127 / amax) : 0;
    view.setUint16(o, toF16Bits(d), true);
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const q = roundHalfEven(f(x[32 * b + j]! * id));
      view.setInt8(o + (withSum ? 4 : 2) + j, q);
      sum += q;
    }
    if (withSum) view.setUint16(o + 2, toF16Bits(f(d * sum)), true);
  }
  return out;
}

/** Runs one converter export of every build on nTok rows; returns each build's output bytes. */
function convert(bench: KernelBench, pick: (k: KernelExports) => (x: number, dst: number, cols: number, nTok: number) => void, x: Float32Array, cols: number, nTok: number, rowBytes: number): Map<string, Uint8Array> {
  const results = new Map<string, Uint8Array>();
  for (const { variant, k } of bench.builds) {
    bench.reset();
    const xp = bench.alloc(4 * x.length), dst = bench.alloc(rowBytes * nTok);
    bench.f32(xp, x.length).set(x);
    bench.u8(dst, rowBytes * nTok).fill(0xee);
    pick(k)(xp, dst, cols, nTok);
    results.set(variant, bench.u8(dst, rowBytes * nTok).slice());
  }
  return results;
}

/** Rows with the awkward cases: a zero block, exact ties of x*127/amax, one huge and tiny values. */
function testRows(cols: number, nTok: number, seed: number): Float32Array {
  const x = randomF32(prng(seed), cols * nTok, 2);
  x.fill(0, 0, 32); // an all-zero block (Q8_K: 256 values of row 0 start with 32 zeros only)
  const ties = [127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5];
  x.set(ties, 32); // amax 127 makes the multiplier exactly 1, so these are ties of the rounding
  x[70] = 3e4;
  x[71] = -1e-30;
  return x;
}

describe('activation conversion', async () => {
  const bench = await kernelBench();
  const cols = 512, nTok = 3;

  it('Q8_0 and Q8_1 match llama.cpp x86 quantization byte for byte', () => {
    const x = testRows(cols, nTok, 7);
    for (const [name, withSum, rowBytes] of [['Q8_0', false, 16 * 34], ['Q8_1', true, 16 * 36]] as const) {
      const want = new Uint8Array(rowBytes * nTok);
      for (let t = 0; t < nTok; t++) want.set(q8Reference(x.subarray(t * cols, (t + 1) * cols), withSum), t * rowBytes);
      const got = convert(bench, (k) => (withSum ? k.quantizeRowsQ8_1 : k.quantizeRowsQ8_0), x, cols, nTok, rowBytes);
      for (const [variant, bytes] of got) expect(Buffer.from(bytes).equals(Buffer.from(want)), `${name} ${variant}`).toBe(true);
    }
    // The ties really are rounded to even (roundf would give 3, -4, 1, -1, 2, 127, -127).
    const q = convert(bench, (k) => k.quantizeRowsQ8_0, x, cols, 1, 16 * 34).get('scalar')!;
    expect([...new Int8Array(q.buffer, 34 + 2, 8)]).toEqual([127, 2, -4, 0, 0, 2, 126, -126]);
  });

  it('Q8_K matches the reference quantizer (llama.cpp quantize_row_q8_K_ref) byte for byte', () => {
    const x = testRows(cols, nTok, 8);
    x.fill(0, cols, cols + 256); // a whole zero super-block: d = 0, quants and bsums 0
    const rowBytes = 2 * 292;
    const want = new Uint8Array(rowBytes * nTok);
    for (let t = 0; t < nTok; t++) want.set(quantizeRow(GGMLType.Q8_K, x.subarray(t * cols, (t + 1) * cols)), t * rowBytes);
    for (const [variant, bytes] of convert(bench, (k) => k.quantizeRowsQ8_K, x, cols, nTok, rowBytes)) {
      expect(Buffer.from(bytes).equals(Buffer.from(want)), `Q8_K ${variant}`).toBe(true);
    }
  });

  it('Q8_K (SIMD in the simd and relaxed builds) equals the reference on random rows and edge blocks', () => {
    const cols = 256 * 12;
    const x = randomF32(prng(11), cols, 3);
    const block = (b: number) => x.subarray(256 * b, 256 * (b + 1));
    block(0).fill(0); // all zeros: d, quants and bsums 0
    block(1).fill(-0);
    block(2)[77] = 1e30; // one huge value: every other quant rounds to 0
    block(3)[200] = -50; // the largest magnitude negative: q = -127 there, d < 0
    block(4)[9] = 40;
    block(4)[3] = -40; // +a and -a: the first one sets the sign of d
    block(5)[3] = 40;
    block(5)[9] = -40;
    block(6).set([-127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5, 127]); // iscale exactly 1: ties go to even
    block(7).set([127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5, -127]); // iscale exactly -1
    block(8).fill(1e-42); // subnormals, and a maximum small enough that d is nearly subnormal
    block(8)[255] = -3e-36;
    block(8)[254] = 1.5e-36;
    block(9).fill(-7); // every value the maximum
    for (let i = 0; i < 256; i += 3) block(10)[i] = NaN; // NaN values are skipped by the maximum
    block(11).fill(2e38, 0, 128); // huge values near the f32 limit
    block(11).fill(-2e38, 128);
    const want = quantizeRow(GGMLType.Q8_K, x.map((v) => (Number.isNaN(v) ? 0 : v)));
    const got = convert(bench, (k) => k.quantizeRowsQ8_K, x, cols, 1, 12 * 292);
    for (const [variant, bytes] of got) {
      for (let b = 0; b < 12; b++) {
        const g = bytes.subarray(292 * b, 292 * (b + 1)), w = want.subarray(292 * b, 292 * (b + 1));
        if (b === 10) {
          // The NaN quants themselves are unspecified (llama.cpp's nearest_int gives garbage); d and the
          // quants of the other values are those of the block without them.
          expect(new DataView(g.buffer, g.byteOffset).getFloat32(0, true), `${variant} NaN block d`).toBe(new DataView(w.buffer, w.byteOffset).getFloat32(0, true));
          for (let i = 0; i < 256; i++) if (i % 3 !== 0) expect(g[4 + i], `${variant} NaN block q${i}`).toBe(w[4 + i]);
          continue;
        }
        expect(Buffer.from(g).equals(Buffer.from(w)), `Q8_K ${variant} block ${b}`).toBe(true);
      }
      expect(Buffer.from(bytes).equals(Buffer.from(got.get('scalar')!)), `Q8_K ${variant} vs scalar`).toBe(true);
    }
    const q = (b: number) => [...new Int8Array(got.get('simd')!.buffer, 292 * b + 4, 9)];
    expect(q(6)).toEqual([-127, 2, -4, 0, 0, 2, 126, -126, 127]);
    expect(q(7)).toEqual([-127, -2, 4, 0, 0, -2, -126, 126, 127]);
    for (let seed = 20; seed < 30; seed++) {
      const n = 256 * (1 + (seed % 4)), rows = 1 + (seed % 3);
      const r = randomF32(prng(seed), n * rows, 10 ** ((seed % 7) - 3));
      const outs = convert(bench, (k) => k.quantizeRowsQ8_K, r, n, rows, (n / 256) * 292);
      const ref = new Uint8Array((n / 256) * 292 * rows);
      for (let t = 0; t < rows; t++) ref.set(quantizeRow(GGMLType.Q8_K, r.subarray(t * n, (t + 1) * n)), t * (n / 256) * 292);
      for (const [variant, bytes] of outs) expect(Buffer.from(bytes).equals(Buffer.from(ref)), `Q8_K ${variant} seed ${seed}`).toBe(true);
    }
  });

  it('F16 rounds like the engine Float16Array (nearest even, subnormals, overflow, NaN)', () => {
    const specials = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, Infinity, -Infinity, 2 ** -24, 2 ** -25, 3 * 2 ** -26,
      2 ** -14, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 6.1e-5, -5.96e-8, 1e-10, 0.1, 3.14159];
    const n = 1000;
    const x = randomF32(prng(9), n, 100);
    x.set(specials);
    for (let i = specials.length; i < n; i += 7) x[i] = x[i]! * 2 ** -20; // into the subnormal range
    x[n - 1] = NaN;
    const want = new Uint16Array(n);
    for (let i = 0; i < n - 1; i++) want[i] = toF16Bits(x[i]!);
    for (const [variant, bytes] of convert(bench, (k) => k.convertRowsF16, x, 100, 10, 200)) {
      const got = new Uint16Array(bytes.buffer);
      expect([...got.subarray(0, n - 1)], variant).toEqual([...want.subarray(0, n - 1)]);
      expect((got[n - 1]! & 0x7c00) === 0x7c00 && (got[n - 1]! & 0x3ff) !== 0, `${variant} NaN`).toBe(true);
    }
  });

  it('BF16 rounds to nearest even like ggml_compute_fp32_to_bf16', () => {
    const n = 600;
    const x = randomF32(prng(10), n, 1e3);
    x.set([0, -0, 1, Infinity, -Infinity, NaN, 3.4e38, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1e-40]);
    const want = [...x].map((v) => f32ToBF16(v));
    for (const [variant, bytes] of convert(bench, (k) => k.convertRowsBF16, x, 60, 10, 120)) {
      expect([...new Uint16Array(bytes.buffer)], variant).toEqual(want);
    }
  });
});
