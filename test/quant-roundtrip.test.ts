// Quantizers and dequantizers against the formats' own arithmetic:
// - llama.cpp's test-quantize-fns error ceilings (RMSE/n on its synthetic data 0.1 + 2cos(i)) for every
//   quantizer;
// - per-weight error bounds that follow from each format (stated at each check) on seeded random data;
// - dequantizers on hand-built blocks whose values are worked out here from the layouts in formats.ts.
import { describe, expect, it } from 'vitest';
import { dequantizeRow } from '../src/quant/dequantize.js';
import { GGMLType, TYPE_TRAITS } from '../src/quant/formats.js';
import { canQuantize, quantizeRow } from '../src/quant/quantize.js';
import { prng as rng } from './support/prng.js';


/** Gaussian-ish weights with a different scale per 32-weight block and some outliers. */
function randomWeights(n: number, seed: number): Float32Array {
  const next = rng(seed);
  const x = new Float32Array(n);
  let scale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0) scale = 10 ** (next() * 4 - 3);
    const g = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    x[i] = g * scale * (next() < 0.01 ? 8 : 1);
  }
  return x;
}

function half(bits: number): number {
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  const s = bits & 0x8000 ? -1 : 1;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Largest |v - f16(v)| for an f16 value v: half an ulp, 2^-11 relative, or 2^-25 among subnormals. */
const f16Err = (v: number): number => Math.max(Math.abs(v) * 2 ** -11, 2 ** -25);
const QUANTIZED = [...TYPE_TRAITS.values()].filter((t) => canQuantize(t.type));

describe("llama.cpp's test-quantize-fns error ceilings", () => {
  // From ggml tests/test-quantize-fns.cpp: MAX_QUANTIZATION_TOTAL_ERROR 0.002, _2BITS 0.0075 (Q2_K),
  // _3BITS 0.0040 (Q3_K); error = sqrt(sum (x - y)^2) / n over 4096 weights x[i] = 0.1 + 2 cos(i).
  const n = 32 * 128;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 0.1 + 2 * Math.cos(i);
  for (const t of QUANTIZED) {
    const ceiling = t.type === GGMLType.Q2_K ? 0.0075 : t.type === GGMLType.Q3_K ? 0.004 : 0.002;
    it(`${t.name}: total error < ${ceiling}`, () => {
      const y = dequantizeRow(t.type, quantizeRow(t.type, x), n);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += (x[i]! - y[i]!) ** 2;
      expect(Math.sqrt(sum) / n).toBeLessThan(ceiling);
    });
  }
});

describe('round trips stay within the format bounds (seeded random data)', () => {
  const n = 256 * 64;
  const x = randomWeights(n, 7);

  /** Checks |x - y| <= bound(i) for every weight, reporting the worst ratio. */
  function within(y: Float32Array, bound: (i: number) => number): void {
    let worst = 0;
    let at = -1;
    for (let i = 0; i < n; i++) {
      const r = Math.abs(x[i]! - y[i]!) / bound(i);
      if (r > worst) {
        worst = r;
        at = i;
      }
    }
    if (worst > 1) throw new Error(`weight ${at}: error ${Math.abs(x[at]! - y[at]!)} exceeds bound ${bound(at)}`);
  }

  it('F16 and BF16: relative error <= 2^-11 and 2^-8 (half an ulp) for normal values', () => {
    within(dequantizeRow(GGMLType.F16, quantizeRow(GGMLType.F16, x), n), (i) => Math.abs(x[i]!) * 2 ** -11 + 2 ** -25);
    within(dequantizeRow(GGMLType.BF16, quantizeRow(GGMLType.BF16, x), n), (i) => Math.abs(x[i]!) * 2 ** -8);
    expect(dequantizeRow(GGMLType.F32, quantizeRow(GGMLType.F32, x), n)).toEqual(x);
  });

  for (const [type, bytes] of [
    [GGMLType.Q8_0, 34],
    [GGMLType.Q8_1, 36],
  ] as const) {
    it(`${GGMLType[type]}: |err| <= d/2 + 127 |d - f16(d)| per block`, () => {
      const q = quantizeRow(type, x);
      const v = new DataView(q.buffer, q.byteOffset);
      within(dequantizeRow(type, q, n), (i) => {
        const d = Math.abs(half(v.getUint16((i >> 5) * bytes, true)));
        return (d / 2 + 127 * f16Err(d)) * 1.001 + 1e-30;
      });
    });
  }

  it('Q8_1: s is f16(d times the sum of the block quants)', () => {
    const q = quantizeRow(GGMLType.Q8_1, x);
    const v = new DataView(q.buffer, q.byteOffset);
    for (let b = 0; b < n / 32; b++) {
      const d = half(v.getUint16(36 * b, true));
      let sum = 0;
      for (let j = 0; j < 32; j++) sum += v.getInt8(36 * b + 4 + j);
      const s = half(v.getUint16(36 * b + 2, true));
      // s = f16(sum * d) with the f32 d, compared here through d's f16 value.
      expect(Math.abs(s - sum * d)).toBeLessThanOrEqual((f16Err(sum * d) + Math.abs(sum) * f16Err(d)) * 1.01);
    }
  });

  for (const [type, bytes, qmax] of [
    [GGMLType.Q4_0, 18, 8],
    [GGMLType.Q5_0, 22, 16],
  ] as const) {
    it(`${GGMLType[type]}: |err| <= d/2 (+ f16 rounding of d), or d where x/d > ${qmax - 0.5} is clamped to ${qmax - 1}`, () => {
      // d = max/-qmax: levels run from -qmax*d to (qmax-1)*d, so only weights of the other sign than the
      // block's largest one, beyond (qmax - 0.5) d, are clamped.
      const q = quantizeRow(type, x);
      const v = new DataView(q.buffer, q.byteOffset);
      within(dequantizeRow(type, q, n), (i) => {
        const d = Math.abs(half(v.getUint16((i >> 5) * bytes, true)));
        const slack = qmax * f16Err(d) * 1.01 + 1e-30;
        return Math.abs(x[i]!) / d > qmax - 0.5 + 1e-3 ? d + slack : d / 2 + slack;
      });
    });
  }

  for (const [type, bytes, qmax] of [
    [GGMLType.Q4_1, 20, 15],
    [GGMLType.Q5_1, 24, 31],
  ] as const) {
    it(`${GGMLType[type]}: |err| <= d/2 + |m - f16(m)| + ${qmax} |d - f16(d)| (range split in ${qmax} steps)`, () => {
      const q = quantizeRow(type, x);
      const v = new DataView(q.buffer, q.byteOffset);
      within(dequantizeRow(type, q, n), (i) => {
        const d = Math.abs(half(v.getUint16((i >> 5) * bytes, true)));
        const m = Math.abs(half(v.getUint16((i >> 5) * bytes + 2, true)));
        return (d / 2 + f16Err(m) + qmax * f16Err(d)) * 1.01 + 1e-30;
      });
    });
  }

  it('Q8_K: |err| <= d/2 with d = max/-127 kept in f32; bsums are the sums of 16 quants', () => {
    const q = quantizeRow(GGMLType.Q8_K, x);
    const v = new DataView(q.buffer, q.byteOffset);
    within(dequantizeRow(GGMLType.Q8_K, q, n), (i) => Math.abs(v.getFloat32((i >> 8) * 292, true)) * 0.5 * (1 + 2 ** -20));
    for (let b = 0; b < n / 256; b++) {
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let j = 0; j < 16; j++) sum += v.getInt8(292 * b + 4 + 16 * g + j);
        expect(v.getInt16(292 * b + 260 + 2 * g, true)).toBe(sum);
      }
    }
  });

  /** |err| of a weight whose sub-block levels are lo, lo + step, ..., hi: nearest level (+ slack). */
  function nearestLevelBound(xi: number, step: number, lo: number, hi: number): number {
    const outside = xi < Math.min(lo, hi) ? Math.min(lo, hi) - xi : xi > Math.max(lo, hi) ? xi - Math.max(lo, hi) : 0;
    return Math.max(Math.abs(step) / 2, outside) * (1 + 1e-5) + 1e-30;
  }

  for (const [type, bytes, nmax] of [
    [GGMLType.Q4_K, 144, 15],
    [GGMLType.Q5_K, 176, 31],
  ] as const) {
    it(`${GGMLType[type]}: every weight lands on the nearest level d*sc*q - dmin*m, q in [0, ${nmax}], of its sub-block`, () => {
      const q = quantizeRow(type, x);
      const v = new DataView(q.buffer, q.byteOffset);
      within(dequantizeRow(type, q, n), (i) => {
        const o = (i >> 8) * bytes;
        const [sc, m] = k4ScaleMin(q, o + 4, (i >> 5) & 7);
        const d = half(v.getUint16(o, true)) * sc;
        const min = half(v.getUint16(o + 2, true)) * m;
        return nearestLevelBound(x[i]!, d, -min, nmax * d - min);
      });
    });
  }

  it('Q6_K: every weight lands on the nearest level d*sc*(q - 32), q in [0, 63], of its 16-weight sub-block', () => {
    const q = quantizeRow(GGMLType.Q6_K, x);
    const v = new DataView(q.buffer, q.byteOffset);
    within(dequantizeRow(GGMLType.Q6_K, q, n), (i) => {
      const o = (i >> 8) * 210;
      const d = half(v.getUint16(o + 208, true)) * v.getInt8(o + 192 + ((i >> 4) & 15));
      return nearestLevelBound(x[i]!, d, -32 * d, 31 * d);
    });
  });

  it('Q3_K: every weight lands on the nearest level d*(sc-32)*q, q in [-4, 3], of its sub-block', () => {
    const q = quantizeRow(GGMLType.Q3_K, x);
    const v = new DataView(q.buffer, q.byteOffset);
    within(dequantizeRow(GGMLType.Q3_K, q, n), (i) => {
      const o = (i >> 8) * 110;
      const d = half(v.getUint16(o + 108, true)) * (q3Scale(q, o + 96, (i >> 4) & 15) - 32);
      return nearestLevelBound(x[i]!, d, -4 * d, 3 * d);
    });
  });

  it('Q2_K: every weight lands on the nearest level d*sc*q - dmin*m, q in [0, 3], of its sub-block', () => {
    const q = quantizeRow(GGMLType.Q2_K, x);
    const v = new DataView(q.buffer, q.byteOffset);
    within(dequantizeRow(GGMLType.Q2_K, q, n), (i) => {
      const o = (i >> 8) * 84;
      const s = q[o + ((i >> 4) & 15)]!;
      const d = half(v.getUint16(o + 80, true)) * (s & 15);
      const min = half(v.getUint16(o + 82, true)) * (s >> 4);
      return nearestLevelBound(x[i]!, d, -min, 3 * d - min);
    });
  });

  it('all-zero blocks stay zero for every format', () => {
    const z = new Float32Array(512);
    for (const t of QUANTIZED) expect([t.name, [...dequantizeRow(t.type, quantizeRow(t.type, z), 512)].every((y) => y === 0)]).toEqual([t.name, true]);
  });
});

// ---------------------------------------------------------------- hand-built blocks

/** Scale and min j of the 12-byte Q4_K/Q5_K scale field, decoded from the layout in formats.ts. */
function k4ScaleMin(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j]! & 63, b[s + j + 4]! & 63];
  return [(b[s + j + 4]! & 15) | ((b[s + j - 4]! >> 6) << 4), (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4)];
}

/** Encodes 8 (scale, min) pairs of 6 bits into the 12-byte field. */
function k4Pack(sc: number[], m: number[]): number[] {
  const out = new Array<number>(12).fill(0);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[j] = sc[j]! & 63;
      out[j + 4] = m[j]! & 63;
    } else {
      out[j + 4] = (sc[j]! & 15) | ((m[j]! & 15) << 4);
      out[j - 4] |= (sc[j]! >> 4) << 6;
      out[j] |= (m[j]! >> 4) << 6;
    }
  }
  return out;
}

/** Scale j (6 bits, stored offset by 32) of Q3_K's 12-byte field. */
function q3Scale(b: Uint8Array, s: number, j: number): number {
  const low = j < 8 ? b[s + j]! & 15 : b[s + j - 8]! >> 4;
  return low | (((b[s + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4);
}

function le16(v: number): number[] {
  return [v & 0xff, v >> 8];
}

function expectValues(type: GGMLType, block: number[], expected: (i: number) => number): void {
  const n = TYPE_TRAITS.get(type)!.blockSize;
  expect(block.length).toBe(TYPE_TRAITS.get(type)!.blockBytes);
  const got = dequantizeRow(type, Uint8Array.from(block), n);
  const want = Float32Array.from({ length: n }, (_, i) => expected(i));
  expect(got).toEqual(want);
}

describe('dequantizers on hand-built blocks', () => {
  it('Q4_0: d=0.5 (f16 0x3800), weight j = low nibble of qs[j], j+16 the high nibble, value d(q-8)', () => {
    const qs = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    expectValues(GGMLType.Q4_0, [...le16(0x3800), ...qs], (i) => 0.5 * ((i < 16 ? i : 31 - i) - 8));
  });

  it('Q4_1: d=0.5, m=-1 (0xbc00), value d*q + m', () => {
    const qs = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    expectValues(GGMLType.Q4_1, [...le16(0x3800), ...le16(0xbc00), ...qs], (i) => 0.5 * (i < 16 ? i : 31 - i) - 1);
  });

  it('Q5_0: d=0.25, qh=0xaaaaaaaa gives the 5th bit of the odd weights, value d(q-16)', () => {
    const qs = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    const block = [...le16(0x3400), 0xaa, 0xaa, 0xaa, 0xaa, ...qs];
    expectValues(GGMLType.Q5_0, block, (i) => 0.25 * ((i < 16 ? i : 31 - i) + (i % 2 ? 16 : 0) - 16));
  });

  it('Q5_1: d=1, m=0.5, qh=0x0000ffff (5th bit on the first 16 weights), qs all 0x21', () => {
    const block = [...le16(0x3c00), ...le16(0x3800), 0xff, 0xff, 0, 0, ...new Array(16).fill(0x21)];
    expectValues(GGMLType.Q5_1, block, (i) => (i < 16 ? 17.5 : 2.5));
  });

  it('Q8_0: d=-2 (0xc000), qs[j] = j - 16', () => {
    expectValues(GGMLType.Q8_0, [...le16(0xc000), ...Array.from({ length: 32 }, (_, j) => (j - 16) & 0xff)], (i) => -2 * (i - 16));
  });

  it('Q8_K: d=0.125 as f32, qs[j] = j - 128, bsums ignored', () => {
    const d = [...new Uint8Array(new Float32Array([0.125]).buffer)];
    expectValues(GGMLType.Q8_K, [...d, ...Array.from({ length: 256 }, (_, j) => j & 0xff ^ 0x80), ...new Array(32).fill(0)], (i) => 0.125 * (i - 128));
  });

  it('Q2_K: d=1, dmin=0.5, scale byte k = (k+1)%16 | 2<<4, every qs byte 0xe4 (levels 0,1,2,3 by shift)', () => {
    // Per 128 weights: 4 groups of 32 at shifts 0,2,4,6 of qs[0..31], each group two sub-blocks of 16;
    // sub-block is = 8*(i/128) + 2*group + (i%32)/16. Level = group (0xe4 = 3,2,1,0 from the top pair).
    const scales = Array.from({ length: 16 }, (_, k) => ((k + 1) % 16) | (2 << 4));
    const block = [...scales, ...new Array(64).fill(0xe4), ...le16(0x3c00), ...le16(0x3800)];
    expectValues(GGMLType.Q2_K, block, (i) => {
      const group = (i % 128) >> 5;
      const is = 8 * (i >> 7) + 2 * group + ((i % 32) >> 4);
      return ((is + 1) % 16) * group - 0.5 * 2;
    });
  });

  it('Q3_K: d=0.5, scales 24..39 (stored +32), hmask bit set for the first 16 of each 32, qs 0xe4', () => {
    const sc = Array.from({ length: 16 }, (_, j) => 24 + j);
    const packed = new Array<number>(12).fill(0);
    for (let j = 0; j < 16; j++) {
      if (j < 8) packed[j] |= sc[j]! & 15;
      else packed[j - 8] |= (sc[j]! & 15) << 4;
      packed[8 + (j % 4)] |= (sc[j]! >> 4) << (2 * (j >> 2));
    }
    const hmask = Array.from({ length: 32 }, (_, k) => (k < 16 ? 0xff : 0));
    const block = [...hmask, ...new Array(64).fill(0xe4), ...packed, ...le16(0x3800)];
    expectValues(GGMLType.Q3_K, block, (i) => {
      const group = (i % 128) >> 5;
      const is = 8 * (i >> 7) + 2 * group + ((i % 32) >> 4);
      const high = i % 32 < 16; // hmask byte i%32, bit 4*(i/128) + group: set for bytes 0..15
      return 0.5 * (sc[is]! - 32) * (group - (high ? 0 : 4));
    });
  });

  const kScales = Array.from({ length: 8 }, (_, j) => 10 + 7 * j); // 10..59: uses the top 2 bits
  const kMins = Array.from({ length: 8 }, (_, j) => 63 - 5 * j); // 63..28
  const qsBytes = Array.from({ length: 128 }, (_, k) => (k * 37) & 0xff);

  it('Q4_K: d=0.5, dmin=0.25, 6-bit scales 10..59 and mins 63..28, value d*sc*q - dmin*m', () => {
    const block = [...le16(0x3800), ...le16(0x3400), ...k4Pack(kScales, kMins), ...qsBytes];
    expectValues(GGMLType.Q4_K, block, (i) => {
      const c = i >> 6; // 64 weights per 32 qs bytes: low nibbles are sub-block 2c, high 2c+1
      const hi = (i % 64) >> 5;
      const byte = qsBytes[32 * c + (i % 32)]!;
      const q = hi ? byte >> 4 : byte & 15;
      return 0.5 * kScales[2 * c + hi]! * q - 0.25 * kMins[2 * c + hi]!;
    });
  });

  it('Q5_K: as Q4_K plus qh[l] bit 2c (low nibble) / 2c+1 (high nibble) as the 5th bit', () => {
    const qh = Array.from({ length: 32 }, (_, l) => (l * 11) & 0xff);
    const block = [...le16(0x3800), ...le16(0x3400), ...k4Pack(kScales, kMins), ...qh, ...qsBytes];
    expectValues(GGMLType.Q5_K, block, (i) => {
      const c = i >> 6;
      const hi = (i % 64) >> 5;
      const l = i % 32;
      const byte = qsBytes[32 * c + l]!;
      const q = (hi ? byte >> 4 : byte & 15) + 16 * ((qh[l]! >> (2 * c + hi)) & 1);
      return 0.5 * kScales[2 * c + hi]! * q - 0.25 * kMins[2 * c + hi]!;
    });
  });

  it('Q6_K: d=0.25, int8 scales -8..7, value d*sc*(q-32) with q = 4 bits of ql | 2 bits of qh', () => {
    const ql = Array.from({ length: 128 }, (_, k) => (k * 7) & 0xff);
    const qh = Array.from({ length: 64 }, (_, k) => (k * 13) & 0xff);
    const sc = Array.from({ length: 16 }, (_, k) => k - 8);
    const block = [...ql, ...qh, ...sc.map((s) => s & 0xff), ...le16(0x3400)];
    expectValues(GGMLType.Q6_K, block, (i) => {
      const h = i >> 7; // per 128 weights: ql[64h..64h+63], qh[32h..32h+31], scales[8h..8h+7]
      const g = (i % 128) >> 5; // group of 32: low nibble of ql[l] (0), ql[l+32] (1), high nibbles (2, 3)
      const l = i % 32;
      const qlByte = ql[64 * h + l + 32 * (g & 1)]!;
      const q = (g >= 2 ? qlByte >> 4 : qlByte & 15) | (((qh[32 * h + l]! >> (2 * g)) & 3) << 4);
      return 0.25 * sc[8 * h + (l >> 4) + 2 * g]! * (q - 32);
    });
  });

  it('F16 and BF16 rows', () => {
    expect(dequantizeRow(GGMLType.F16, Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]), 3)).toEqual(Float32Array.from([1, -2, 2 ** -24]));
    expect(dequantizeRow(GGMLType.BF16, Uint8Array.from([0x80, 0x3f, 0x40, 0xc0]), 2)).toEqual(Float32Array.from([1, -3]));
  });

  it('bad requests are clear errors', () => {
    expect(() => dequantizeRow(99 as GGMLType, new Uint8Array(18), 32)).toThrow(/unknown GGML type id 99/);
    expect(() => dequantizeRow(GGMLType.IQ2_XXS, new Uint8Array(66), 256)).toThrow(/no dequantizer for it/);
    expect(() => dequantizeRow(GGMLType.Q4_0, new Uint8Array(18), 31)).toThrow(/not a multiple of its block of 32/);
    expect(() => dequantizeRow(GGMLType.Q4_0, new Uint8Array(17), 32)).toThrow(/needs 18 bytes, got 17/);
    expect(() => quantizeRow(GGMLType.IQ4_NL, new Float32Array(32))).toThrow(/no quantizer for it/);
    expect(() => quantizeRow(GGMLType.Q4_K, new Float32Array(32))).toThrow(/not a multiple of its block of 256/);
  });
});
