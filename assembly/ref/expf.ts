// f32 exponentials. expf32, used by softmax: simd/expf.ts is the same sequence of operations on four
// lanes, so the scalar twin and the SIMD kernels give bit-identical results (wasm float arithmetic
// is IEEE and never contracted into fused multiply-adds). Below it, SwiGLU with llama.cpp's own
// exponentials.
//
// exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (|r| <= ln2/2, ln 2 split in two so
// that n * LN2_HI is exact), e^r by its Taylor polynomial to degree 6 (relative error ~1e-7).
// Domain: 0 below EXP_MIN (where the true value is a subnormal), +inf above EXP_MAX (where 2^n would
// need n = 128; the true value there is within a factor 2 of f32's largest).

export const LOG2E: f32 = 1.44269504;
export const LN2_HI: f32 = 0.693359375;
export const LN2_LO: f32 = -2.12194440e-4;
export const EXP_MIN: f32 = -87.33654;
export const EXP_MAX: f32 = 88.0;
export const C2: f32 = 0.5;
export const C3: f32 = 1.0 / 6.0;
export const C4: f32 = 1.0 / 24.0;
export const C5: f32 = 1.0 / 120.0;
export const C6: f32 = 1.0 / 720.0;

export function expf32(x: f32): f32 {
  if (x < EXP_MIN) return 0;
  if (x > EXP_MAX) return Infinity;
  const n = nearest<f32>(x * LOG2E);
  const r = (x - n * LN2_HI) - n * LN2_LO;
  const p: f32 = 1 + r * (1 + r * (C2 + r * (C3 + r * (C4 + r * (C5 + r * C6)))));
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

// ---- SwiGLU as llama.cpp computes it on x86 with AVX-512 (ggml_vec_swiglu_f32, per row of n):
// silu(x) * g with ggml_v_expf (below) on each whole group of 16 values, and the C library's expf on
// the last n % 16. The SIMD builds run simd/swiglu.ts, the same operations two lanes at a time. ----

/** An x86 fused multiply-add of f32 values: a * b is exact in f64, so only the final rounding remains. */
// @ts-ignore: decorator
@inline function fmaF32(a: f32, b: f32, c: f32): f32 {
  return <f32>(<f64>a * <f64>b + <f64>c);
}

/**
 * ggml_v_expf, the AVX-512 form (ggml-cpu/vec.h, "adapted from arm limited optimized routine", max error
 * 1.45 + 0.5 ulp): n = round(x / ln 2) by the 1.5 * 2^23 trick, b = x - n ln 2 in two fused steps, a
 * degree-5 polynomial in fused multiply-adds, then scalef(j, n) = j * 2^n rounded once; |n| > 192
 * gives 0 (n <= 0) or +inf. The constants are the original's hex floats as bit patterns.
 */
export function expfGgml(x: f32): f32 {
  const shifter = reinterpret<f32>(0x4b400000); // 0x1.8p23
  const z = fmaF32(x, reinterpret<f32>(0x3fb8aa3b), shifter); // 0x1.715476p+0
  const n = z - shifter;
  const bHi = fmaF32(-n, reinterpret<f32>(0x3f317200), x); // 0x1.62e4p-1
  const b = fmaF32(-n, reinterpret<f32>(0x35bfbe8e), bHi); // 0x1.7f7d1cp-20
  const u = b * b;
  const p45 = fmaF32(reinterpret<f32>(0x3c072010), b, reinterpret<f32>(0x3d2b9f17)); // 0x1.0e402p-7, 0x1.573e2ep-5
  const p23 = fmaF32(reinterpret<f32>(0x3e2aaf33), b, reinterpret<f32>(0x3efffedb)); // 0x1.555e66p-3, 0x1.fffdb6p-2
  const p01 = fmaF32(reinterpret<f32>(0x3f7ffff6), b, 1); // 0x1.ffffecp-1
  const j = fmaF32(fmaF32(p45, u, p23), u, p01);
  if (n != n) return n; // NaN in, NaN out
  if (abs(n) > 192) return n <= 0 ? 0 : Infinity;
  return <f32>(<f64>j * reinterpret<f64>(<u64>(<i64>n + 1023) << 52));
}

/** The C library's expf (glibc's is within 0.502 ulp of exact): exp in f64, rounded to f32. */
export function expfLibm(x: f32): f32 {
  return <f32>Math.exp(<f64>x);
}

/**
 * out[i] = silu(gate[i]) * up[i] for i < n; out may alias. The first `vecEnd` values take ggml_v_expf,
 * the rest the C library's expf: one row of ggml_vec_swiglu_f32 when vecEnd = n & ~15.
 */
export function swiglu(gate: usize, up: usize, out: usize, n: i32, vecEnd: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const x = load<f32>(gate + o);
    // ggml_v_silu: x / (1 + e^(0 - x)); ggml_silu_f32: x / (1 + expf(-x))
    const e = i < vecEnd ? expfGgml(0 - x) : expfLibm(-x);
    store<f32>(out + o, (x / (1 + e)) * load<f32>(up + o));
  }
}
