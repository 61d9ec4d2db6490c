// Lane helpers the SIMD kernels share: exact int8 dot products (widened to i16 in SIMD128, the relaxed
// dot where its 7-bit operand is known to fit), horizontal sums, and f16/bf16 lanes to f32.

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

/** Four IEEE half values (one per u32 lane) to f32, exact; the lane form of half.ts's f16ToF32. */
// @ts-ignore: decorator
@inline export function halfLanesToF32(h: v128): v128 {
  const mag = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const scaled = f32x4.mul(mag, f32x4.splat(reinterpret<f32>(0x77800000)));
  const infNan = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const f = v128.bitselect(v128.or(mag, i32x4.splat(0x7f800000)), scaled, infNan);
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
 * acc + q * d for two lanes, rounded once to f32: an x86 fused multiply-add of f32 operands. q are
 * integers below 2^24 (lanes 0 and 1 of an i32x4, or 2 and 3 when `high`), d an f64x2 splat of an f32,
 * acc two f32 values in f64 form; q * d is exact in f64, so only the final rounding remains.
 */
// @ts-ignore: decorator
@inline export function fmaLanes(acc: v128, q: v128, high: bool, d: v128): v128 {
  const qq = high ? i32x4.shuffle(q, q, 2, 3, 2, 3) : q;
  return roundToF32(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(qq), d), acc));
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
