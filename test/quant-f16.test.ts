// f16 and bf16 conversions (src/quant/f16.ts) against independent references: Node 24's Math.f16round
// (IEEE round-to-nearest-even, implemented by V8) for f32 -> f16, hand-derived IEEE edge cases, and a
// value-based nearest-even rounding for bf16 (the rule of llama.cpp's ggml_compute_fp32_to_bf16).
import { describe, expect, it } from 'vitest';
import {
  bf16ArrayToF32,
  bf16BitsFromF32Bits,
  bf16ToF32,
  f16ArrayToF32,
  f16BitsFromF32Bits,
  f16ToF32,
  f32ArrayToBF16,
  f32ArrayToF16,
  f32ToBF16,
  f32ToF16,
} from '../src/quant/f16.js';
import { prngU32 as rng } from './support/prng.js';

const f16round = (Math as unknown as { f16round: (x: number) => number }).f16round;


function f32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

describe('f16', () => {
  it('Math.f16round exists (tests run on Node 24)', () => {
    expect(typeof f16round).toBe('function');
  });

  it('all 65536 f16 patterns: decode agrees with Math.f16round, and f16 -> f32 -> f16 is exact', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bulk = f16ArrayToF32(all);
    const back = f32ArrayToF16(bulk);
    let nans = 0;
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      const fail = (what: string): never => {
        throw new Error(`f16 0x${h.toString(16)}: ${what}`);
      };
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) {
        // NaN: stays NaN, keeps its sign and payload, gains the quiet bit (as F16C does).
        if (!Number.isNaN(v) || !Number.isNaN(bulk[h]!)) fail('NaN decoded as a number');
        if (back[h] !== (h | 0x200)) fail(`NaN re-encoded as 0x${back[h]!.toString(16)}`);
        if (f32ToF16(v) !== 0x7e00) fail('scalar NaN is not 0x7e00');
        nans++;
        continue;
      }
      if (!Object.is(v, bulk[h])) fail(`scalar ${v} and bulk ${bulk[h]} decode differ`);
      if (!Object.is(f16round(v), v)) fail(`${v} is not an f16 value for Math.f16round`);
      if (f32ToF16(v) !== h) fail(`scalar re-encodes as 0x${f32ToF16(v).toString(16)}`);
      if (back[h] !== h) fail(`bulk re-encodes as 0x${back[h]!.toString(16)}`);
    }
    expect(nans).toBe(2 * 1023);
  });

  it('rounds edge cases to nearest even, including subnormals and overflow', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1+2^-10 and 1+2^-9: even is 1+2^-9
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [65504, 0x7bff], // largest finite
      [65519.996, 0x7bff], // just below the tie with infinity
      [65520, 0x7c00], // tie between 65504 and 65536 (even: infinity)
      [1e10, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even is 2
      [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal and the smallest normal
      [2 ** -14, 0x0400],
      [-0, 0x8000],
      [0, 0x0000],
      [-2, 0xc000],
      [1e-10, 0x0000],
    ];
    for (const [x, h] of cases) {
      expect([x, f32ToF16(x)]).toEqual([x, h]);
      const bits = new Uint32Array(new Float32Array([x]).buffer)[0]!;
      expect([x, f16BitsFromF32Bits(bits)]).toEqual([x, h]);
      expect(Object.is(f16ToF32(h), f16round(Math.fround(x)))).toBe(true);
    }
  });

  it('NaN payloads convert as F16C does: quiet bit set, top payload bits kept', () => {
    expect(f16BitsFromF32Bits(0x7fc00000)).toBe(0x7e00);
    expect(f16BitsFromF32Bits(0xffc00000)).toBe(0xfe00);
    expect(f16BitsFromF32Bits(0x7f800001)).toBe(0x7e00); // signalling NaN with payload below f16's reach
    expect(f16BitsFromF32Bits(0x7fffffff)).toBe(0x7fff);
    expect(f16BitsFromF32Bits(0x7f800000)).toBe(0x7c00);
  });

  it('agrees with Math.f16round on 200k random f32 values (scalar and bulk)', () => {
    const next = rng(1234);
    const n = 200_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const r = next();
      // Half the samples anywhere, half near f16's range where the rounding is interesting.
      bits[i] = i % 2 ? r : (r & 0x807fffff) | ((((r >>> 23) % 40) + 97) << 23);
    }
    const x = new Float32Array(bits.buffer);
    const h = f32ArrayToF16(x);
    for (let i = 0; i < n; i++) {
      const want = f16round(x[i]!);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(f16ToF32(h[i]!))).toBe(true);
        continue;
      }
      const scalar = f32ToF16(x[i]!);
      if (scalar !== h[i] || !Object.is(f16ToF32(scalar), want)) {
        throw new Error(`f32 bits 0x${bits[i]!.toString(16)}: scalar 0x${scalar.toString(16)}, bulk 0x${h[i]!.toString(16)}, f16round ${want}`);
      }
    }
  });
});

/** bf16 by value: the nearer of the two bf16 neighbours of x, ties to the even one. */
function bf16Oracle(bits: number): number {
  const lo = bits >>> 16; // truncation: the neighbour toward zero
  const x = Math.abs(f32FromBits(bits));
  const a = Math.abs(f32FromBits((lo << 16) >>> 0));
  // Past the largest finite bf16 the next step up is 2^128, which rounds to infinity.
  const up = Math.abs(f32FromBits(((lo + 1) << 16) >>> 0));
  const b = up === Infinity ? 2 ** 128 : up;
  const da = x - a;
  const db = b - x;
  if (da < db) return lo;
  if (db < da) return (lo + 1) & 0xffff;
  return lo & 1 ? (lo + 1) & 0xffff : lo;
}

describe('bf16', () => {
  it('rounds to nearest even on the top 16 bits and quiets NaNs as llama.cpp does', () => {
    expect(f32ToBF16(1)).toBe(0x3f80);
    expect(bf16BitsFromF32Bits(0x3f808000)).toBe(0x3f80); // tie, even stays
    expect(bf16BitsFromF32Bits(0x3f818000)).toBe(0x3f82); // tie, odd rounds up
    expect(bf16BitsFromF32Bits(0x3f808001)).toBe(0x3f81);
    expect(bf16BitsFromF32Bits(0x7f7fffff)).toBe(0x7f80); // max f32 rounds to infinity
    expect(bf16BitsFromF32Bits(0x7f800001)).toBe(0x7fc0); // NaN: top half | quiet bit
    expect(bf16BitsFromF32Bits(0xffffffff)).toBe(0xffff);
    expect(bf16BitsFromF32Bits(0x00008000)).toBe(0x0000); // subnormal tie to even (zero)
    expect(bf16BitsFromF32Bits(0x00018000)).toBe(0x0002);
    expect(f32ToBF16(-0)).toBe(0x8000);
    expect(Number.isNaN(bf16ToF32(0x7fc0))).toBe(true);
  });

  it('agrees with value-based rounding and between scalar and bulk forms on 200k random f32', () => {
    const next = rng(99);
    const n = 200_000;
    const bits = new Uint32Array(n).map(() => next());
    const x = new Float32Array(bits.buffer);
    const bulk = f32ArrayToBF16(x);
    const back = bf16ArrayToF32(bulk);
    for (let i = 0; i < n; i++) {
      const b = bits[i]!;
      if ((b & 0x7fffffff) >>> 0 > 0x7f800000) {
        expect(bulk[i]).toBe(((b >>> 16) | 0x40) & 0xffff);
        continue;
      }
      const want = bf16Oracle(b);
      if (bulk[i] !== want || f32ToBF16(x[i]!) !== want || !Object.is(bf16ToF32(want), back[i])) {
        throw new Error(`f32 bits 0x${b.toString(16)}: bulk 0x${bulk[i]!.toString(16)}, scalar 0x${f32ToBF16(x[i]!).toString(16)}, want 0x${want.toString(16)}`);
      }
    }
  });
});
