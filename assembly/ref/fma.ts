// The x86 fused multiply-add of f32 values (vfmadd: one rounding of a * b + c) in f64 arithmetic,
// exactly: a * b of two f32 is exact in f64, and the sum is rounded to f32 through round-to-odd, which
// makes the second rounding correct. The scalar twins use it for every block step of llama.cpp's float
// order; the SIMD builds take its fast path in lanes (simd/lanes.ts, fmaRound) and come here only
// for the rare sums that need it.

/** RN32(p + c) as f32, p and c f64 (p + c is the exact value to round when p, c are exact). */
export function fmaExactF64(p: f64, c: f64): f32 {
  const s = p + c;
  // error of the f64 sum (TwoSum): p + c = s + e exactly
  const bb = s - p;
  const e = (p - (s - bb)) + (c - bb);
  if (e == 0) return <f32>s;
  // round to odd: the neighbour of p + c with an odd last bit, then one correct rounding to f32
  const bits = reinterpret<i64>(s);
  if ((bits & 1) != 0) return <f32>s;
  return <f32>reinterpret<f64>((e > 0) == (s > 0) ? bits + 1 : bits - 1);
}

/**
 * fma(a, b, c) of f32 values with one rounding. Fast path: the f64 sum rounds to the right f32 unless
 * it lies exactly halfway between two f32 values (low 29 significand bits 1000..0) or in the f32
 * subnormal range.
 */
// @ts-ignore: decorator
@inline export function fmaF32(a: f32, b: f32, c: f32): f32 {
  const p = <f64>a * <f64>b;
  const s = p + <f64>c;
  if ((reinterpret<u64>(s) & 0x1fffffff) != 0x10000000 && abs(s) >= 1.1754943508222875e-38) return <f32>s;
  return fmaExactF64(p, <f64>c);
}
