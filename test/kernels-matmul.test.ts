// The matmul kernels of every weight type in every build, and the dispatch table that names them.
// Error ceilings (S = sum over i of |w_i * x_i| for the row and token, on dequantized values):
//   simd and relaxed vs the scalar twin:         bit-identical for F32, F16, BF16, Q4_0, Q5_0, Q8_0 (same
//                                                 lanes, same reduction order, the same fused
//                                                 multiply-adds: exact f64 emulation in scalar and
//                                                 simd, relaxed_madd in relaxed) and Q4_K, Q5_K, Q6_K
//                                                 (exact block integers, then the twin's float steps);
//                                                 |diff| <= 1e-5 * S for the others
//                                                 (integer parts are exact; only the order of f32 sums
//                                                 and scale products differs)
// Q4_0 and Q8_0 kernels read the packed layouts (test/kernels-repack.test.ts); their weights are repacked
// from the file layout first, as the loader does.
//   scalar vs f64 dot of dequantized weights and dequantized activations (TS reference dequantizer):
//                                                 |diff| <= 2e-5 * S + D, D = sum over Q8_1 blocks of
//                                                 |m_w| * |s - d * sum(q)| (llama.cpp's dot uses the
//                                                 activation block's f16-rounded s for the min term)
//   scalar vs f64 dot of dequantized weights and the unquantized f32 activations:
//                                                 |diff| <= sum |w_i| * e_i + D + 2e-5 * S, e_i the
//                                                 a-priori activation rounding bound of the format
//   F16, Q4_0, Q5_0, Q8_0 vs a transcription (below, in TypeScript) of llama.cpp's x86 AVX-512 kernels:
//                                                 bit-identical: ggml_vec_dot_f16, ggml_vec_dot_q*_0_q8_0
//                                                 with AVX2 (eight lanes of four weights, one fused
//                                                 multiply-add per block, rounded once: computed
//                                                 exactly here, hsum_float_8) and, for Q4_0
//                                                 with a multiple of 8 rows, the repacked
//                                                 ggml_gemv/gemm_q4_0_8x8_q8_0 (one lane per output)
import { describe, expect, it } from 'vitest';
import { GGMLType, TYPE_TRAITS, rowBytes } from '../src/quant/formats.js';
import { dequantizeRow as tsDequantizeRow } from '../src/quant/dequantize.js';
import { MATMUL_TABLE, matmulKernelFor, UnsupportedWeightTypeError } from '../src/runtime/kernel-table.js';
import { fromF16Bits, kernelBench, prng, randomF32, randomWeights } from './kernels-harness.js';

/** Types whose SIMD kernels and scalar twins compute the same bits. */
const BIT_IDENTICAL = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);

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


const fr = Math.fround;

/** f32 value x as m * 2^e, m an integer. */
function f32Parts(x: number): [bigint, number] {
  const bits = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const exp = (bits >>> 23) & 255, frac = bits & 0x7fffff;
  const m = BigInt(exp === 0 ? frac : frac | 0x800000);
  return [bits >>> 31 ? -m : m, exp === 0 ? -149 : exp - 150];
}

/**
 * An x86 fused multiply-add of f32 values (vfmadd): a * b + c computed exactly in integers and rounded
 * once to f32, to nearest, ties to even (finite inputs).
 */
function fma(a: number, b: number, c: number): number {
  const [ma, ea] = f32Parts(a), [mb, eb] = f32Parts(b), [mc, ec] = f32Parts(c);
  const ep = ea + eb, e = Math.min(ep, ec);
  const total = ((ma * mb) << BigInt(ep - e)) + (mc << BigInt(ec - e));
  if (total === 0n) return a * b + c; // an exact zero: its sign as IEEE addition gives it
  const neg = total < 0n, mag = neg ? -total : total;
  const shift = Math.max(mag.toString(2).length - 24, -149 - e);
  let q = mag;
  if (shift > 0) {
    q = mag >> BigInt(shift);
    const rem = mag - (q << BigInt(shift)), half = 1n << BigInt(shift - 1);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  }
  const v = Number(q) * 2 ** (e + Math.max(shift, 0));
  return fr(neg ? -v : v);
}
const f16At = (bytes: Uint8Array, off: number): number => fromF16Bits(bytes[off]! | (bytes[off + 1]! << 8));

/** Signed weight j of block b of a Q4_0, Q5_0 or Q8_0 row. */
function weight32(type: GGMLType, w: Uint8Array, b: number, j: number): number {
  const o = b * TYPE_TRAITS.get(type)!.blockBytes;
  if (type === GGMLType.Q8_0) return (w[o + 2 + j]! << 24) >> 24;
  const qs = o + (type === GGMLType.Q4_0 ? 2 : 6);
  const nibble = j < 16 ? w[qs + j]! & 15 : w[qs + j - 16]! >> 4;
  if (type === GGMLType.Q4_0) return nibble - 8;
  const qh = w[o + 2]! | (w[o + 3]! << 8) | (w[o + 4]! << 16) | (w[o + 5]! << 24);
  return (nibble | (((qh >>> j) & 1) << 4)) - 16;
}

/**
 * One output of llama.cpp's x86 (AVX2 / AVX-512) kernels, written from their source in
 * ggml/src/ggml-cpu (arch/x86/quants.c, arch/x86/repack.cpp, vec.cpp); undefined for other types.
 */
function llamaX86Dot(type: GGMLType, w: Uint8Array, xq: Uint8Array, cols: number, rows: number): number | undefined {
  if (type === GGMLType.F16) {
    // ggml_vec_dot_f16: GGML_F16_STEP 64 = 4 accumulators of 16 lanes (fused multiply-adds, exact
    // here as f16 products are exact in f32), GGML_F32x16_REDUCE, then the leftovers in double
    const np = cols & ~63;
    const acc = new Array<number>(64).fill(0);
    for (let i = 0; i < np; i += 64) for (let l = 0; l < 64; l++) acc[l] = fma(f16At(w, 2 * (i + l)), f16At(xq, 2 * (i + l)), acc[l]!);
    const x = [0, 1, 2, 3].map((j) => acc.slice(16 * j, 16 * j + 16));
    const add = (a: number[], b: number[]) => a.map((v, i) => fr(v + b[i]!));
    x[0] = add(x[0]!, x[2]!);
    x[1] = add(x[1]!, x[3]!);
    x[0] = add(x[0]!, x[1]!);
    // _mm512_reduce_add_ps: 256-bit halves, 128-bit halves, then (0 + 2) + (1 + 3)
    const h8 = add(x[0]!.slice(8), x[0]!.slice(0, 8));
    const h4 = add(h8.slice(4), h8.slice(0, 4));
    let sum = fr(fr(h4[0]! + h4[2]!) + fr(h4[1]! + h4[3]!));
    for (let i = np; i < cols; i++) sum += fr(f16At(w, 2 * i) * f16At(xq, 2 * i));
    return fr(sum);
  }
  if (type !== GGMLType.Q4_0 && type !== GGMLType.Q5_0 && type !== GGMLType.Q8_0) return undefined;
  const nb = cols / 32;
  const blockSum = (b: number, first: number, count: number): number => {
    let s = 0;
    for (let j = first; j < first + count; j++) s += weight32(type, w, b, j) * ((xq[b * 34 + 2 + j]! << 24) >> 24);
    return s;
  };
  const scale = (b: number) => fr(f16At(w, b * TYPE_TRAITS.get(type)!.blockBytes) * f16At(xq, b * 34));
  if (type === GGMLType.Q4_0 && rows % 8 === 0) {
    // repacked: acc_row = _mm256_fmadd_ps(cvtepi32_ps(iacc), col_scale * row_scale, acc_row)
    let acc = 0;
    for (let b = 0; b < nb; b++) acc = fma(blockSum(b, 0, 32), scale(b), acc);
    return acc;
  }
  // ggml_vec_dot_q*_0_q8_0: acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc), hsum_float_8
  const acc = new Array<number>(8).fill(0);
  for (let b = 0; b < nb; b++) for (let l = 0; l < 8; l++) acc[l] = fma(scale(b), blockSum(b, 4 * l, 4), acc[l]!);
  const r = [0, 1, 2, 3].map((i) => fr(acc[i + 4]! + acc[i]!));
  return fr(fr(r[0]! + r[2]!) + fr(r[1]! + r[3]!));
}

describe('matmul kernels', async () => {
  const bench = await kernelBench();

  for (const entry of MATMUL_TABLE.values()) {
    const name = GGMLType[entry.type];
    it(`${name}: every build against the scalar twin and f64 references (prefill and decode)`, () => {
      const rand = prng(100 + entry.type);
      const traits = TYPE_TRAITS.get(entry.type)!;
      const cols = colsFor(entry.type);
      const wRow = rowBytes(entry.type, cols), xRow = rowBytes(entry.activationType, cols);

      // 9 rows, and 16 to 48 (multiples of 8: llama.cpp's repacked order for Q4_0); ranges inside a
      // packed group, on group boundaries (the tiled prefill path), and across them; 40 and 48 rows
      // reach the decode paths that take two and four packed groups per pass
      for (const [rows, nTok, rowStart, rowEnd] of [[9, 7, 0, 9], [9, 1, 2, 7], [9, 4, 3, 4], [16, 5, 0, 16], [16, 1, 8, 16], [24, 6, 8, 24], [24, 3, 5, 19], [40, 1, 0, 40], [48, 1, 8, 48]] as const) {
        const w = randomWeights(entry.type, rows * cols, rand, traits.blockSize, traits.blockBytes);
        const x = randomF32(rand, nTok * cols, 1);
        bench.reset();
        const xf = bench.alloc(4 * x.length), xq = bench.alloc(xRow * nTok);
        bench.f32(xf, x.length).set(x);
        if (entry.converterName) entry.convert(bench.scalar)(xf, xq, cols, nTok);
        const xBytes = entry.converterName ? bench.u8(xq, xRow * nTok).slice() : new Uint8Array(x.buffer.slice(0));
        const wFile = bench.alloc(w.length), xp = bench.alloc(xBytes.length);
        bench.u8(wFile, w.length).set(w);
        bench.u8(xp, xBytes.length).set(xBytes);
        // packed types multiply the layout their weights are repacked into at load
        let wp = wFile;
        if (entry.layout) {
          wp = bench.alloc(entry.matrixBytes(rows, cols));
          entry.repack(bench.scalar, wFile, wp, rows, cols);
        }

        const outs = new Map<string, Float32Array>();
        for (const { variant, k } of bench.builds) {
          const out = bench.alloc(4 * rows * nTok);
          bench.f32(out, rows * nTok).fill(NaN);
          entry.matmul(k)(wp, xp, out, cols, rows, nTok, rowStart, rowEnd);
          outs.set(variant, bench.f32(out, rows * nTok).slice());
        }
        const scalar = outs.get('scalar')!;
        const where = `${name} rows=${rows} nTok=${nTok} rows ${rowStart}..${rowEnd}`;

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
              if (BIT_IDENTICAL.has(entry.type)) expect(Object.is(out[t * rows + r], got), `${at}: ${variant} vs scalar`).toBe(true);
              else expect(Math.abs(out[t * rows + r]! - got), `${at}: ${variant} vs scalar`).toBeLessThanOrEqual(1e-5 * s);
            }
            const x86 = llamaX86Dot(entry.type, wr, xqt, cols, rows);
            if (x86 !== undefined) expect(Object.is(got, x86), `${at}: scalar vs llama.cpp x86 order`).toBe(true);
          }
        }
      }
    });
  }
});

describe('fused multiply-add of the block steps', async () => {
  const bench = await kernelBench();

  it('rounds once in every build, where an f64 sum rounded to f32 would round twice', () => {
    // (2^8 (1 + 2^-23)) * (2^8 (1 - 2^-23)) = 2^16 - 2^-30; + (2^40 + 2^17): the f64 sum lands on the
    // f32 midpoint 2^40 + 2^17 + 2^16 and would round to even (2^40 + 2^18); the exact value is below it
    const a = 2 ** 8 * (1 + 2 ** -23), b = 2 ** 8 * (1 - 2 ** -23), c = 2 ** 40 + 2 ** 17;
    expect(fma(a, b, c)).toBe(2 ** 40 + 2 ** 17);
    expect(fr(a * b + c)).toBe(2 ** 40 + 2 ** 18);
    const rand = prng(7);
    const cases: [number, number, number][] = [[a, b, c], [-a, b, -c], [a, -b, c], [3, 2 ** -140, 2 ** -149], [0, 5, -0], [-0, 5, -0]];
    for (let i = 0; i < 3000; i++) {
      // integer quad/block sums times scales, against accumulators of every magnitude
      const q = Math.round((rand() - 0.5) * 2 ** (1 + Math.floor(rand() * 17)));
      const d = fr((rand() - 0.5) * 2 ** (Math.floor(rand() * 60) - 40));
      const acc = fr((rand() - 0.5) * 2 ** (Math.floor(rand() * 80) - 50));
      cases.push([q, d, acc]);
    }
    for (const { variant, k } of bench.builds) {
      for (const [x, y, z] of cases) expect(Object.is(k.fmaProbe(x, y, z), fma(x, y, z)), `${variant} fma(${x}, ${y}, ${z})`).toBe(true);
    }
  });
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

describe('packed Q4_0 / Q8_0 kernels on special scales and activations', async () => {
  const bench = await kernelBench();
  // The SIMD kernels take fast paths for finite normal scales and for activations in -127..127 (all our
  // quantizer writes); infinite, NaN, subnormal and signed-zero scales and -128 activation quants must
  // give the scalar twin's bits too.
  const SPECIAL_F16 = [0x7c00, 0xfc00, 0x7e00, 0x0001, 0x03ff, 0x8000, 0x0000, 0x7bff];
  for (const type of [GGMLType.Q4_0, GGMLType.Q8_0]) {
    it(`${GGMLType[type]}: every build gives the scalar twin's bits`, () => {
      const entry = matmulKernelFor(type);
      const traits = TYPE_TRAITS.get(type)!;
      const rand = prng(900 + type);
      const cols = 256, rows = 40, nb = cols / 32;
      const w = randomWeights(type, rows * cols, rand, traits.blockSize, traits.blockBytes);
      const wv = new DataView(w.buffer);
      for (let i = 0; i < 24; i++) {
        const b = Math.floor(rand() * rows * nb);
        wv.setUint16(b * traits.blockBytes, SPECIAL_F16[i % SPECIAL_F16.length]!, true);
      }
      for (const nTok of [1, 4, 5]) {
        const xRow = rowBytes(entry.activationType, cols);
        bench.reset();
        const xf = bench.alloc(4 * nTok * cols), xq = bench.alloc(xRow * nTok);
        bench.f32(xf, nTok * cols).set(randomF32(rand, nTok * cols, 1));
        entry.convert(bench.scalar)(xf, xq, cols, nTok);
        const xBytes = bench.u8(xq, xRow * nTok);
        const xv = new DataView(xBytes.buffer, xBytes.byteOffset, xBytes.byteLength);
        for (let i = 0; i < 3 * nTok; i++) {
          const blk = Math.floor(rand() * nTok * nb);
          xBytes[blk * 34 + 2 + Math.floor(rand() * 32)] = 0x80; // quant -128
          if (i % 3 === 0) xv.setUint16(Math.floor(rand() * nTok * nb) * 34, SPECIAL_F16[Math.floor(rand() * SPECIAL_F16.length)]!, true);
        }
        const wFile = bench.alloc(w.length);
        bench.u8(wFile, w.length).set(w);
        const wp = bench.alloc(entry.matrixBytes(rows, cols));
        entry.repack(bench.scalar, wFile, wp, rows, cols);
        const outs = bench.builds.map(({ variant, k }) => {
          const out = bench.alloc(4 * rows * nTok);
          entry.matmul(k)(wp, xq, out, cols, rows, nTok, 0, rows);
          return { variant, out: bench.f32(out, rows * nTok).slice() };
        });
        const scalar = outs.find((o) => o.variant === 'scalar')!.out;
        expect(scalar.some((v) => !Number.isFinite(v)), 'the special scales reach the outputs').toBe(true);
        for (const { variant, out } of outs) {
          for (let i = 0; i < out.length; i++) {
            const at = `${variant} nTok=${nTok} output ${i}: ${out[i]} vs ${scalar[i]}`;
            // Where an infinite or NaN scale reaches an output, the builds agree that it is not finite,
            // but not on which of inf and NaN it is: the SIMD128 build's f64 emulation of the fused
            // multiply-add meets inf - inf in another step than a true fma does.
            if (!Number.isFinite(scalar[i]!)) expect(Number.isFinite(out[i]!), at).toBe(false);
            else expect(Object.is(out[i], scalar[i]), at).toBe(true);
          }
        }
      }
    });
  }
});
