// f32 exponential used by silu and softmax. simd/expf.ts is the same sequence of operations on four
// lanes, so the scalar twin and the SIMD kernels give bit-identical results (wasm float arithmetic
// is IEEE and never contracted into fused multiply-adds).
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

/** silu(g) = g / (1 + e^-g). */
// @ts-ignore: decorator
@inline export function siluF32(g: f32): f32 {
  return g / (1 + expf32(-g));
}
