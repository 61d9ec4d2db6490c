// Lane helpers the SIMD kernels share: exact int8 dot products (widened to i16 in SIMD128, the relaxed
// dot where its 7-bit operand is known to fit), horizontal sums, f16/bf16 lanes to f32, and x86's fused
// multiply-add of f32 values with its single rounding.
import { fmaExactF64 } from '../ref/fma';

/** i32x4 partial sums of a[i]*b[i] over 16 signed bytes, exact (widened to i16 first). */
// @ts-ignore: decorator
@inline export function dotI8(a: v128, b: v128): v128 {
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b));
  return i32x4.add(lo, hi);
}

/**
 * acc + i32x4 partial sums of x[i]*q[i], x signed bytes, q bytes the caller guarantees are in 0..127.
 * That guarantee is what makes the relaxed dot exact on every engine (x86 lowers it to pmaddubsw,
 * which reads q as unsigned and cannot saturate with |x| <= 128, q <= 127).
 */
// @ts-ignore: decorator
@inline export function dotAccU7(acc: v128, x: v128, q: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, q, acc);
  return i32x4.add(acc, dotI8(x, q));
}

// @ts-ignore: decorator
@inline export function hsumF32(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline export function hsumI32(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/** acc + convert(isum) * scale: the step from a block's integer sums to the float accumulator. */
// @ts-ignore: decorator
@inline export function accScaled(acc: v128, isum: v128, scale: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(scale)));
}

/**
 * Four IEEE half values (one per u32 lane) to f32, exact; the lane form of half.ts's f16ToF32. Normal
 * halves are rebiased in integers, subnormal ones converted from their integer significand and scaled
 * by 2^-24 (a normal product): no f32 subnormal operand, on which x86 takes a slow microcode assist.
 */
// @ts-ignore: decorator
@inline export function halfLanesToF32(h: v128): v128 {
  const mag = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const exp = v128.and(h, i32x4.splat(0x7c00));
  const normal = i32x4.add(mag, i32x4.splat(112 << 23));
  const sub = f32x4.mul(f32x4.convert_i32x4_u(v128.and(h, i32x4.splat(0x3ff))), f32x4.splat(reinterpret<f32>(0x33800000)));
  let f = v128.bitselect(sub, normal, i32x4.eq(exp, i32x4.splat(0)));
  f = v128.bitselect(v128.or(mag, i32x4.splat(0x7f800000)), f, i32x4.eq(exp, i32x4.splat(0x7c00)));
  return v128.or(f, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Sixteen 0x10 or 0x00 bytes: bit i of `bits` (16 bits) moved to bit 4 of lane i. */
// @ts-ignore: decorator
@inline export function bitsToFifthBit(bits: u32): v128 {
  const spread = i8x16.swizzle(i16x8.splat(<i16>bits), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const mask = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return v128.and(i8x16.eq(v128.and(spread, mask), mask), i8x16.splat(0x10));
}

// ---- llama.cpp's x86 accumulation order (see simd/matmul.ts, "x86 order") ----

/** The 16 int8 values at p as two i16x8: even-numbered elements (0, 2, .., 14) and odd ones. */
// @ts-ignore: decorator
@inline export function evenI16(v: v128): v128 {
  return i16x8.shr_s(i16x8.shl(v, 8), 8);
}
// @ts-ignore: decorator
@inline export function oddI16(v: v128): v128 {
  return i16x8.shr_s(v, 8);
}

/**
 * i32x4 whose lane i is the exact sum of x[j] * w[j] over j = 4i..4i+3 (x: 16 int8 at xp; w given by
 * its even and odd elements as i16x8): the lane grouping of x86's maddubs+madd / dpbusd, which is what
 * llama.cpp's 8-lane float accumulators see.
 */
// @ts-ignore: decorator
@inline export function quadSums(xp: usize, wEven: v128, wOdd: v128): v128 {
  const xv = v128.load(xp);
  return i32x4.add(i32x4.dot_i16x8_s(evenI16(xv), wEven), i32x4.dot_i16x8_s(oddI16(xv), wOdd));
}

/** Each f64 lane rounded to the nearest f32 (kept in f64 form). */
// @ts-ignore: decorator
@inline export function roundToF32(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
}

/**
 * All-ones in each lane of the f64x2 sum s that lies exactly halfway between two f32 values (low 29
 * significand bits 1000..0): the only sums of normal size whose rounding to f32 can differ from the
 * rounding of the exact value they stand for.
 */
// @ts-ignore: decorator
@inline export function f32Halfway(s: v128): v128 {
  return i64x2.eq(v128.and(s, i64x2.splat(0x1fffffff)), i64x2.splat(0x10000000));
}

/**
 * RN32(p + c) for two lanes, given s = RN64(p + c) that may be a halfway case (the rare path): exact
 * sums (s - p == c and s - c == p) round as they are, the others go through ref/fma.ts.
 */
// @ts-ignore: decorator
@inline export function fmaSlowPair(p: v128, c: v128, s: v128): v128 {
  const exact = v128.and(f64x2.eq(f64x2.sub(s, p), c), f64x2.eq(f64x2.sub(s, c), p));
  if (i64x2.all_true(exact)) return roundToF32(s);
  return f64x2.replace_lane(
    f64x2.splat(<f64>fmaExactF64(f64x2.extract_lane(p, 0), f64x2.extract_lane(c, 0))),
    1,
    <f64>fmaExactF64(f64x2.extract_lane(p, 1), f64x2.extract_lane(c, 1)),
  );
}

/**
 * Two x86 fused multiply-adds of f32 values, rounded exactly once: RN32(p + c) for f64x2 p (exact
 * products of f32 operands) and c (f32 accumulators in f64 form), kept in f64 form. The f64 sum
 * RN64(p + c) rounds to the same f32 unless it lies exactly halfway between two f32 values or in the
 * f32 subnormal range; those rare pairs take fmaSlowPair. The relaxed build uses f32x4.relaxed_madd
 * instead (fused, checked at start-up by the self-test): the same bits. Kernels whose operands are
 * products of f16 scales and integers (multiples of 2^-71, so never a nonzero subnormal sum) check
 * four pairs at once with f32Halfway alone (fmaRound4Lanes).
 */
// @ts-ignore: decorator
@inline export function fmaRound(p: v128, c: v128): v128 {
  const s = f64x2.add(p, c);
  const tiny = f64x2.lt(f64x2.abs(s), f64x2.splat(1.1754943508222875e-38)); // 2^-126
  if (v128.any_true(v128.or(f32Halfway(s), tiny))) return fmaSlowPair(p, c, s);
  return roundToF32(s);
}

/** q * d for two lanes in f64 (q lanes 0-1 of an i32x4, or 2-3 when `high`): exact. */
// @ts-ignore: decorator
@inline export function mulLanes(q: v128, high: bool, d: v128): v128 {
  return f64x2.mul(f64x2.convert_low_i32x4_s(high ? i32x4.shuffle(q, q, 2, 3, 2, 3) : q), d);
}

/**
 * acc + q * d for two lanes, rounded once to f32: an x86 fused multiply-add of f32 operands. q are
 * integers below 2^24 (lanes 0 and 1 of an i32x4, or 2 and 3 when `high`), d an f64x2 splat of an f32,
 * acc two f32 values in f64 form; q * d is exact in f64.
 */
// @ts-ignore: decorator
@inline export function fmaLanes(acc: v128, q: v128, high: bool, d: v128): v128 {
  const qq = high ? i32x4.shuffle(q, q, 2, 3, 2, 3) : q;
  return fmaRound(f64x2.mul(f64x2.convert_low_i32x4_s(qq), d), acc);
}

/** acc + q * d in four f32 lanes with one rounding (relaxed build: a fused madd, see fmaRound). */
// @ts-ignore: decorator
@inline export function fmaF32x4(acc: v128, q: v128, d: v128): v128 {
  return f32x4.relaxed_madd(f32x4.convert_i32x4_s(q), d, acc);
}

/** Two f64x2 holding f32 values (lanes 0,1 and 2,3) back into one f32x4. */
// @ts-ignore: decorator
@inline export function joinF32(lo: v128, hi: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** (v0 + v2) + (v1 + v3): the last steps of x86's hsum_float_8 and _mm512_reduce_add_ps. */
// @ts-ignore: decorator
@inline export function hsumX86(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 2)) + (f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 3));
}

/** llama.cpp's hsum_float_8 of eight f32 lanes given as four f64x2 (lanes 0-1, 2-3, 4-5, 6-7). */
// @ts-ignore: decorator
@inline export function hsum8(a01: v128, a23: v128, a45: v128, a67: v128): f32 {
  return hsumX86(f32x4.add(joinF32(a01, a23), joinF32(a45, a67)));
}
