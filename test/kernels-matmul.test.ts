// The matmul kernels of every weight type in every build, and the dispatch table that names them.
// Error ceilings (S = sum over i of |w_i * x_i| for the row and token, on dequantized values):
//   simd and relaxed vs the scalar twin:         |diff| <= 1e-5 * S (integer parts are exact; only
//                                                 the order of f32 sums and scale products differs)
//   scalar vs f64 dot of dequantized weights and dequantized activations (TS reference dequantizer):
//                                                 |diff| <= 2e-5 * S + D, D = sum over Q8_1 blocks of
//                                                 |m_w| * |s - d * sum(q)| (llama.cpp's dot uses the
//                                                 activation block's f16-rounded s for the min term)
//   scalar vs f64 dot of dequantized weights and the unquantized f32 activations:
//                                                 |diff| <= sum |w_i| * e_i + D + 2e-5 * S, e_i the
//                                                 a-priori activation rounding bound of the format
import { describe, expect, it } from 'vitest';
import { GGMLType, TYPE_TRAITS, rowBytes } from '../src/quant/formats.js';
import { dequantizeRow as tsDequantizeRow } from '../src/quant/dequantize.js';
import { MATMUL_TABLE, matmulKernelFor, UnsupportedWeightTypeError } from '../src/runtime/kernel-table.js';
import { fromF16Bits, kernelBench, prng, randomF32, randomWeights } from './kernels-harness.js';

const COLS: Partial<Record<GGMLType, number>> = { [GGMLType.F32]: 173, [GGMLType.F16]: 172, [GGMLType.BF16]: 166 };

function colsFor(type: GGMLType): number {
  return COLS[type] ?? (TYPE_TRAITS.get(type)!.blockSize === 256 ? 512 : 256);
}

/** A-priori bound on |dequantized activation - x| for each value of a row in format `act`. */
function activationErrorBound(act: GGMLType, x: Float32Array): Float64Array {
  const e = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (act === GGMLType.F16) e[i] = Math.abs(x[i]!) * 2 ** -11;
    else if (act === GGMLType.BF16) e[i] = Math.abs(x[i]!) * 2 ** -8;
    else if (act !== GGMLType.F32) {
      const block = act === GGMLType.Q8_K ? 256 : 32;
      const start = i - (i % block);
      let amax = 0;
      for (let j = start; j < start + block; j++) amax = Math.max(amax, Math.abs(x[j]!));
      // half a step of amax/127, plus (Q8_0/Q8_1) the f16 rounding of the step times |q| <= 127
      e[i] = (amax / 127) * (0.5 + (act === GGMLType.Q8_K ? 1e-6 : 127 * 2 ** -11));
    }
  }
  return e;
}

/** D: the part of llama.cpp's Q4_1/Q5_1 dot that comes from the f16 rounding of the activation's s. */
function minTermRounding(type: GGMLType, w: Uint8Array, xq: Uint8Array, cols: number): number {
  if (type !== GGMLType.Q4_1 && type !== GGMLType.Q5_1) return 0;
  const wBytes = TYPE_TRAITS.get(type)!.blockBytes;
  let dSum = 0;
  for (let b = 0; b < cols / 32; b++) {
    const m = fromF16Bits(w[b * wBytes + 2]! | (w[b * wBytes + 3]! << 8));
    const o = b * 36;
    const d = fromF16Bits(xq[o]! | (xq[o + 1]! << 8));
    const s = fromF16Bits(xq[o + 2]! | (xq[o + 3]! << 8));
    let qsum = 0;
    for (let j = 0; j < 32; j++) qsum += (xq[o + 4 + j]! << 24) >> 24;
    dSum += Math.abs(m) * Math.abs(s - d * qsum);
  }
  return dSum;
}

describe('matmul kernels', async () => {
  const bench = await kernelBench();

  for (const entry of MATMUL_TABLE.values()) {
    const name = GGMLType[entry.type];
    it(`${name}: every build against the scalar twin and f64 references (prefill and decode)`, () => {
      const rand = prng(100 + entry.type);
      const traits = TYPE_TRAITS.get(entry.type)!;
      const cols = colsFor(entry.type), rows = 9;
      const wRow = rowBytes(entry.type, cols), xRow = rowBytes(entry.activationType, cols);
      const w = randomWeights(entry.type, rows * cols, rand, traits.blockSize, traits.blockBytes);

      for (const [nTok, rowStart, rowEnd] of [[7, 0, rows], [1, 2, 7], [4, 3, 4]] as const) {
        const x = randomF32(rand, nTok * cols, 1);
        bench.reset();
        const xf = bench.alloc(4 * x.length), xq = bench.alloc(xRow * nTok);
        bench.f32(xf, x.length).set(x);
        if (entry.converterName) entry.convert(bench.scalar)(xf, xq, cols, nTok);
        const xBytes = entry.converterName ? bench.u8(xq, xRow * nTok).slice() : new Uint8Array(x.buffer.slice(0));
        const wp = bench.alloc(w.length), xp = bench.alloc(xBytes.length);
        bench.u8(wp, w.length).set(w);
        bench.u8(xp, xBytes.length).set(xBytes);

        const outs = new Map<string, Float32Array>();
        for (const { variant, k } of bench.builds) {
          const out = bench.alloc(4 * rows * nTok);
          bench.f32(out, rows * nTok).fill(NaN);
          entry.matmul(k)(wp, xp, out, cols, rows, nTok, rowStart, rowEnd);
          outs.set(variant, bench.f32(out, rows * nTok).slice());
        }
        const scalar = outs.get('scalar')!;
        const where = `${name} nTok=${nTok} rows ${rowStart}..${rowEnd}`;

        for (let t = 0; t < nTok; t++) {
          const xt = x.subarray(t * cols, (t + 1) * cols);
          const xqt = xBytes.subarray(t * xRow, (t + 1) * xRow);
          const xDeq = tsDequantizeRow(entry.activationType, xqt, cols);
          const eX = activationErrorBound(entry.activationType, xt);
          for (let r = 0; r < rows; r++) {
            const inRange = r >= rowStart && r < rowEnd;
            for (const [variant, out] of outs) {
              if (!inRange) expect(Number.isNaN(out[t * rows + r]!), `${where}: ${variant} wrote row ${r}`).toBe(true);
            }
            if (!inRange) continue;
            const wr = w.subarray(r * wRow, (r + 1) * wRow);
            const wDeq = tsDequantizeRow(entry.type, wr, cols);
            let tight = 0, loose = 0, s = 0, bound = 0;
            for (let i = 0; i < cols; i++) {
              tight += wDeq[i]! * xDeq[i]!;
              loose += wDeq[i]! * xt[i]!;
              s += Math.abs(wDeq[i]! * xDeq[i]!);
              bound += Math.abs(wDeq[i]!) * eX[i]!;
            }
            const d = minTermRounding(entry.type, wr, xqt, cols);
            const got = scalar[t * rows + r]!;
            const at = `${where} token ${t} row ${r}`;
            expect(Math.abs(got - tight), `${at}: scalar vs dequantized f64`).toBeLessThanOrEqual(2e-5 * s + d);
            expect(Math.abs(got - loose), `${at}: scalar vs f32 activations`).toBeLessThanOrEqual(bound + d + 2e-5 * s);
            for (const [variant, out] of outs) {
              expect(Math.abs(out[t * rows + r]! - got), `${at}: ${variant} vs scalar`).toBeLessThanOrEqual(1e-5 * s);
            }
          }
        }
      }
    });
  }
});

describe('kernel table', async () => {
  const bench = await kernelBench();

  it('names an existing export for every supported weight type in every build', () => {
    const weightTypes = [...TYPE_TRAITS.values()].filter((t) => t.supported && t.type !== GGMLType.Q8_1 && t.type !== GGMLType.Q8_K);
    expect([...MATMUL_TABLE.keys()].sort()).toEqual(weightTypes.map((t) => t.type).sort());
    for (const { k } of bench.builds) {
      for (const e of MATMUL_TABLE.values()) {
        expect(typeof e.matmul(k)).toBe('function');
        if (e.converterName) expect(typeof e.convert(k)).toBe('function');
        else expect(() => e.convert(k)).toThrow(/no converter/);
      }
    }
  });

  it('maps each weight type to llama.cpp’s vec_dot_type', () => {
    const act = (t: GGMLType) => matmulKernelFor(t).activationType;
    expect([GGMLType.Q4_0, GGMLType.Q5_0, GGMLType.Q8_0].map(act)).toEqual([GGMLType.Q8_0, GGMLType.Q8_0, GGMLType.Q8_0]);
    expect([GGMLType.Q4_1, GGMLType.Q5_1].map(act)).toEqual([GGMLType.Q8_1, GGMLType.Q8_1]);
    expect([GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K].map(act)).toEqual(Array(5).fill(GGMLType.Q8_K));
    expect([GGMLType.F32, GGMLType.F16, GGMLType.BF16].map(act)).toEqual([GGMLType.F32, GGMLType.F16, GGMLType.BF16]);
  });

  it('throws an error naming an unsupported type', () => {
    expect(() => matmulKernelFor(GGMLType.IQ2_XXS)).toThrow(UnsupportedWeightTypeError);
    expect(() => matmulKernelFor(GGMLType.IQ2_XXS)).toThrow(/IQ2_XXS/);
    expect(() => matmulKernelFor(77 as GGMLType)).toThrow(/unknown type id 77/);
  });
});
