// The fused rmsNorm + activation conversion kernels (rmsNormToQ8_0/Q8_1/Q8_K/F16/BF16) in every build:
// their f32 rows must be the bits of rmsNorm and their converted rows the bytes of the converter run
// on those rows (error ceiling 0), so the graph's logits do not change when it fuses the two. The
// converted rows are also checked against references we did not write: llama.cpp's
// quantize_row_q8_K_ref (src/quant), the engine's Float16Array, ggml_compute_fp32_to_bf16.
import { describe, expect, it } from 'vitest';
import { GGMLType } from '../src/quant/formats.js';
import { quantizeRow } from '../src/quant/quantize.js';
import { f32ToBF16 } from '../src/quant/f16.js';
import type { KernelExports, NormConverter, RowConverter } from '../src/runtime/kernel-exports.js';
import { kernelBench, prng, randomF32, toF16Bits } from './kernels-harness.js';

interface Format {
  readonly name: string;
  readonly fused: (k: KernelExports) => NormConverter;
  readonly convert: (k: KernelExports) => RowConverter;
  readonly rowBytes: (cols: number) => number;
  /** An independent reference for one normed row, where there is one. */
  readonly reference?: (row: Float32Array) => Uint8Array;
}

const FORMATS: readonly Format[] = [
  { name: 'Q8_0', fused: (k) => k.rmsNormToQ8_0, convert: (k) => k.quantizeRowsQ8_0, rowBytes: (c) => (c / 32) * 34 },
  { name: 'Q8_1', fused: (k) => k.rmsNormToQ8_1, convert: (k) => k.quantizeRowsQ8_1, rowBytes: (c) => (c / 32) * 36 },
  {
    name: 'Q8_K', fused: (k) => k.rmsNormToQ8_K, convert: (k) => k.quantizeRowsQ8_K, rowBytes: (c) => (c / 256) * 292,
    reference: (row) => quantizeRow(GGMLType.Q8_K, row),
  },
  {
    name: 'F16', fused: (k) => k.rmsNormToF16, convert: (k) => k.convertRowsF16, rowBytes: (c) => c * 2,
    reference: (row) => new Uint8Array(Uint16Array.from(row, toF16Bits).buffer),
  },
  {
    name: 'BF16', fused: (k) => k.rmsNormToBF16, convert: (k) => k.convertRowsBF16, rowBytes: (c) => c * 2,
    reference: (row) => new Uint8Array(Uint16Array.from(row, f32ToBF16).buffer),
  },
];

describe('fused rmsNorm + conversion', async () => {
  const bench = await kernelBench();

  for (const fmt of FORMATS) {
    it(`rmsNormTo${fmt.name} is rmsNorm then the ${fmt.name} converter, bit for bit, in every build`, () => {
      for (const cols of fmt.name === 'Q8_K' ? [256, 768] : [576, 768]) {
        const nTok = 4, eps = 1e-5;
        const x = randomF32(prng(cols + fmt.name.length), cols * nTok, 2);
        x.fill(0, cols, 2 * cols); // a zero row: the scale is 1/sqrt(eps), every value 0
        x[2 * cols + 5] = 3e4; // one huge value
        x[3 * cols + 1] = -1e3;
        const w = randomF32(prng(cols), cols, 1);
        const rowBytes = fmt.rowBytes(cols);
        let scalar: { out: Float32Array; dst: Uint8Array } | undefined;
        for (const { variant, k } of bench.builds) {
          for (const weighted of [true, false]) {
            bench.reset();
            const xp = bench.alloc(4 * x.length), wp = bench.alloc(4 * cols);
            const out = bench.alloc(4 * x.length), dst = bench.alloc(rowBytes * nTok);
            const out2 = bench.alloc(4 * x.length), dst2 = bench.alloc(rowBytes * nTok);
            bench.f32(xp, x.length).set(x);
            bench.f32(wp, cols).set(w);
            bench.u8(dst, rowBytes * nTok).fill(0xee);
            bench.u8(dst2, rowBytes * nTok).fill(0xee);
            fmt.fused(k)(xp, weighted ? wp : 0, out, dst, cols, nTok, eps);
            k.rmsNorm(xp, weighted ? wp : 0, out2, cols, nTok, eps);
            fmt.convert(k)(out2, dst2, cols, nTok);
            const what = `${fmt.name} ${variant} cols ${cols} ${weighted ? 'weighted' : 'unweighted'}`;
            const o = bench.f32(out, x.length).slice(), d = bench.u8(dst, rowBytes * nTok).slice();
            expect(Buffer.from(o.buffer).equals(Buffer.from(bench.f32(out2, x.length).slice().buffer)), `${what}: f32 rows`).toBe(true);
            expect(Buffer.from(d).equals(Buffer.from(bench.u8(dst2, rowBytes * nTok))), `${what}: converted rows`).toBe(true);
            if (fmt.reference) {
              for (let t = 0; t < nTok; t++) {
                const want = fmt.reference(o.subarray(t * cols, (t + 1) * cols));
                expect(Buffer.from(d.subarray(t * rowBytes, (t + 1) * rowBytes)).equals(Buffer.from(want)), `${what}: token ${t} vs reference`).toBe(true);
              }
            }
            if (!weighted) continue;
            if (!scalar) scalar = { out: o, dst: d };
            expect(Buffer.from(o.buffer).equals(Buffer.from(scalar.out.buffer)), `${what}: f32 rows vs scalar`).toBe(true);
            expect(Buffer.from(d).equals(Buffer.from(scalar.dst)), `${what}: converted rows vs scalar`).toBe(true);
          }
        }
      }
    });
  }

  it('splitting by tokens gives the same bits (how the parallel executor divides a call)', () => {
    const cols = 512, nTok = 5, rowBytes = (cols / 256) * 292;
    const x = randomF32(prng(3), cols * nTok, 1), w = randomF32(prng(4), cols, 1);
    for (const { variant, k } of bench.builds) {
      bench.reset();
      const xp = bench.alloc(4 * x.length), wp = bench.alloc(4 * cols);
      const out = bench.alloc(4 * x.length), dst = bench.alloc(rowBytes * nTok);
      const out2 = bench.alloc(4 * x.length), dst2 = bench.alloc(rowBytes * nTok);
      bench.f32(xp, x.length).set(x);
      bench.f32(wp, cols).set(w);
      k.rmsNormToQ8_K(xp, wp, out, dst, cols, nTok, 1e-6);
      for (const [a, b] of [[0, 2], [2, 3], [3, 5]] as const) {
        k.rmsNormToQ8_K(xp + 4 * a * cols, wp, out2 + 4 * a * cols, dst2 + a * rowBytes, cols, b - a, 1e-6);
      }
      expect(Buffer.from(bench.u8(dst, rowBytes * nTok)).equals(Buffer.from(bench.u8(dst2, rowBytes * nTok))), variant).toBe(true);
      expect(Buffer.from(bench.u8(out, 4 * x.length)).equals(Buffer.from(bench.u8(out2, 4 * x.length))), variant).toBe(true);
    }
  });
});
