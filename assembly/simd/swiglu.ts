// SwiGLU (silu(gate) * up) with llama.cpp's ggml_v_expf, two values per f64x2, bit for bit what the
// scalar twin (ref/expf.ts, expfGgml and swiglu) computes: every intermediate is an f32 value held in
// f64, each operation done in f64 and rounded to f32 once (exact for the products, and for sums and
// quotients of f32 values rounding through f64 first gives the same f32), each fused multiply-add as
// the twin's `f32(a * b + c in f64)`.
import { swiglu } from '../ref/expf';

/** Each f64 lane rounded to the nearest f32, kept in f64 form. */
// @ts-ignore: decorator
@inline function r32(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
}

/** The twin's fmaF32 on two lanes. */
// @ts-ignore: decorator
@inline function fma2(a: v128, b: v128, c: v128): v128 {
  return r32(f64x2.add(f64x2.mul(a, b), c));
}

/** The f32 constant with bits `bits`, in both f64 lanes. */
// @ts-ignore: decorator
@inline function k2(bits: u32): v128 {
  return f64x2.splat(<f64>reinterpret<f32>(bits));
}

/** expfGgml on two lanes (f32 values in f64 form); constants and steps as in ref/expf.ts. */
// @ts-ignore: decorator
@inline function expGgml2(x: v128): v128 {
  const shifter = k2(0x4b400000);
  const z = fma2(x, k2(0x3fb8aa3b), shifter);
  const n = r32(f64x2.sub(z, shifter));
  const nn = f64x2.neg(n);
  const bHi = fma2(nn, k2(0x3f317200), x);
  const b = fma2(nn, k2(0x35bfbe8e), bHi);
  const u = r32(f64x2.mul(b, b));
  const p45 = fma2(k2(0x3c072010), b, k2(0x3d2b9f17));
  const p23 = fma2(k2(0x3e2aaf33), b, k2(0x3efffedb));
  const p01 = fma2(k2(0x3f7ffff6), b, f64x2.splat(1));
  const j = fma2(fma2(p45, u, p23), u, p01);
  // j * 2^n rounded once; lanes with |n| > 192 (where the bits of 2^n below are garbage) become 0 or
  // +inf, NaN lanes stay n
  const e = i64x2.shl(i64x2.extend_low_i32x4_s(i32x4.add(i32x4.trunc_sat_f64x2_s_zero(n), i32x4.splat(1023))), 52);
  const y = r32(f64x2.mul(j, e));
  const outside = v128.bitselect(f64x2.splat(Infinity), f64x2.splat(0), f64x2.gt(n, f64x2.splat(0)));
  return v128.bitselect(n, v128.bitselect(outside, y, f64x2.gt(f64x2.abs(n), f64x2.splat(192))), f64x2.ne(n, n));
}

/** silu(g) * up on two lanes: (g / (1 + e^(0 - g))) * up. */
// @ts-ignore: decorator
@inline function silu2(g: v128, up: v128): v128 {
  const e = expGgml2(f64x2.sub(f64x2.splat(0), g));
  return r32(f64x2.mul(r32(f64x2.div(g, r32(f64x2.add(f64x2.splat(1), e)))), up));
}

/** silu(g) * up on four f32 lanes through the f64 form above. */
// @ts-ignore: decorator
@inline function silu4ViaF64(g: v128, u: v128): v128 {
  const lo = silu2(f64x2.promote_low_f32x4(g), f64x2.promote_low_f32x4(u));
  const hi = silu2(f64x2.promote_low_f32x4(i32x4.shuffle(g, g, 2, 3, 2, 3)), f64x2.promote_low_f32x4(i32x4.shuffle(u, u, 2, 3, 2, 3)));
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/**
 * The relaxed build's silu(g) * up on four f32 lanes: the same operations in f32x4, each fused step a
 * relaxed_madd (fused in every engine whose relaxed build is picked: the start-up self-test checks),
 * each other step an f32 operation, which rounds as the f64-then-f32 form does for + - * / of f32
 * values. j * 2^n is one f32 multiply while 2^n is a normal f32 (-126 <= n <= 127), rounded once as
 * the twin's f64 product is; a vector with any other n (or NaN) goes through silu4ViaF64.
 */
// @ts-ignore: decorator
@inline function silu4(g: v128, u: v128): v128 {
  const x = f32x4.sub(f32x4.splat(0), g);
  const shifter = f32x4.splat(reinterpret<f32>(0x4b400000));
  const z = f32x4.relaxed_madd(x, f32x4.splat(reinterpret<f32>(0x3fb8aa3b)), shifter);
  const n = f32x4.sub(z, shifter);
  const inRange = v128.and(f32x4.ge(n, f32x4.splat(-126)), f32x4.le(n, f32x4.splat(127)));
  if (!i32x4.all_true(inRange)) return silu4ViaF64(g, u);
  const nn = f32x4.neg(n);
  const bHi = f32x4.relaxed_madd(nn, f32x4.splat(reinterpret<f32>(0x3f317200)), x);
  const b = f32x4.relaxed_madd(nn, f32x4.splat(reinterpret<f32>(0x35bfbe8e)), bHi);
  const uu = f32x4.mul(b, b);
  const p45 = f32x4.relaxed_madd(f32x4.splat(reinterpret<f32>(0x3c072010)), b, f32x4.splat(reinterpret<f32>(0x3d2b9f17)));
  const p23 = f32x4.relaxed_madd(f32x4.splat(reinterpret<f32>(0x3e2aaf33)), b, f32x4.splat(reinterpret<f32>(0x3efffedb)));
  const p01 = f32x4.relaxed_madd(f32x4.splat(reinterpret<f32>(0x3f7ffff6)), b, f32x4.splat(1));
  const j = f32x4.relaxed_madd(f32x4.relaxed_madd(p45, uu, p23), uu, p01);
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  const e = f32x4.mul(j, pow2n);
  return f32x4.mul(f32x4.div(g, f32x4.add(f32x4.splat(1), e)), u);
}

/** out[i] = silu(gate[i]) * up[i] on ggml_v_expf for i < n4 (a multiple of 4); out may alias. */
function swigluX4(gate: usize, up: usize, out: usize, n4: i32): void {
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o), u = v128.load(up + o);
    v128.store(out + o, ASC_FEATURE_RELAXED_SIMD ? silu4(g, u) : silu4ViaF64(g, u));
  }
}

/** SIMD siluMul: every value on ggml_v_expf (the last n % 4 through the scalar twin). */
export function simdSiluMul(gate: usize, up: usize, out: usize, n: i32): void {
  const n4 = n & ~3;
  swigluX4(gate, up, out, n4);
  const o = <usize>n4 << 2;
  swiglu(gate + o, up + o, out + o, n - n4, n - n4);
}

/** SIMD siluMulRows: per row, ggml_v_expf on the whole groups of 16, the C library's expf after. */
export function simdSiluMulRows(gate: usize, up: usize, out: usize, cols: i32, nTok: i32): void {
  const vecEnd = cols & ~15;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    swigluX4(gate + o, up + o, out + o, vecEnd);
    const e = o + (<usize>vecEnd << 2);
    swiglu(gate + e, up + e, out + e, cols - vecEnd, 0);
  }
}
