// The kernel module's exported entry points. Built three times from these sources (scalar, simd,
// relaxed); each export resolves at compile time to the SIMD version or its scalar twin in ref/.
// Every kernel takes pointers into the imported shared memory and lengths; none allocates.
import { refDotI8I7 } from './ref/selftest';
import { simdDotI8I7 } from './simd/selftest';
import { refDequantizeRow } from './ref/dequantize';
import {
  refQuantizeRowsQ8_0, refQuantizeRowsQ8_1, refQuantizeRowsQ8_K, refConvertRowsF16, refConvertRowsBF16,
} from './ref/quantize';
import { refMatmul } from './ref/matmul';
import { simdQuantizeRowsQ8_0, simdQuantizeRowsQ8_1, simdQuantizeRowsQ8_K } from './simd/quantize';
import { refRmsNormToBF16, refRmsNormToF16, refRmsNormToQ8_0, refRmsNormToQ8_1, refRmsNormToQ8_K } from './ref/norm-convert';
import { simdRmsNormToBF16, simdRmsNormToF16, simdRmsNormToQ8_0, simdRmsNormToQ8_1, simdRmsNormToQ8_K } from './simd/norm-convert';
import { fmaF32 as refFmaF32 } from './ref/fma';
import { fmaRound } from './simd/lanes';
import {
  simdMatmulF32, simdMatmulF16, simdMatmulBF16, simdMatmulQ4_1, simdMatmulQ5_0,
  simdMatmulQ5_1, simdMatmulQ2_K, simdMatmulQ3_K, simdMatmulQ4_K, simdMatmulQ5_K,
  simdMatmulQ6_K,
} from './simd/matmul';
import { simdMatmulQ4_0, simdMatmulQ8_0 } from './simd/matmul-packed';
import { simdMatmulPackedBF16, simdMatmulPackedF16, simdMatmulPackedF32 } from './simd/matmul-packed-float';
import { refMatmulPackedFloat } from './ref/matmul-packed-float';
import { simdMatmulPackedQ6K } from './simd/matmul-packed-q6k';
import { refMatmulPackedQ6K } from './ref/matmul-packed-q6k';
import { simdMatmulPackedQ4_1, simdMatmulPackedQ4_K, simdMatmulPackedQ5_K } from './simd/matmul-packed-kquant';
import { refMatmulPackedKQuant } from './ref/matmul-packed-kquant';
import { dequantizePackedRow as refDequantizePackedRow, repackRows as refRepackRows } from './ref/repack';
import { refAddBias, refAddRows, refRmsNorm, refScaleRows, refSiluMul, refSiluMulRows } from './ref/ops';
import { simdAddBias, simdAddRows, simdRmsNorm, simdScaleRows } from './simd/ops';
import { simdSiluMul, simdSiluMulRows } from './simd/swiglu';
import { rope } from './ref/rope';
import { refAttention } from './ref/attention';
import { simdAttention } from './simd/attention';
import { ATTN_TILE_K, ATTN_TILE_SCRATCH_BYTES, refAttentionTiled } from './ref/attention-tiled';
import { simdAttentionTiled } from './simd/attention-tiled';
import { refAttentionKvF16, refAttentionKvInt8, refKvStoreF16, refKvStoreInt8, refKvStoreInt8Keys } from './ref/kv';
import { simdAttentionKvF16, simdAttentionKvInt8, simdKvStoreInt8 } from './simd/kv';
import { kvTiledScratchBytes, refAttentionKvF16Tiled, refAttentionKvInt8Tiled } from './ref/kv-tiled';
import { simdAttentionKvF16Tiled, simdAttentionKvInt8Tiled } from './simd/kv-tiled';
import {
  TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0,
  TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K,
} from './formats';

export { blockSize, blockBytes, packedRows, packedGroupBytes, packedLayoutVersion } from './formats';

/** 0 = scalar, 1 = simd, 2 = relaxed: what this build was compiled with. */
export function kernelVariant(): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return 2;
  if (ASC_FEATURE_SIMD) return 1;
  return 0;
}

/** First byte of memory that no static data of this module uses. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * Known-answer probe run at start-up: sum of a[i]*b[i], a signed bytes, b in 0..127, n % 16 == 0. The
 * relaxed build returns a wrong sum when this engine's relaxed madd is not fused (simd/selftest.ts).
 */
export function selfTestDotI8(a: usize, b: usize, n: i32): i32 {
  if (ASC_FEATURE_SIMD) return simdDotI8I7(a, b, n);
  return refDotI8I7(a, b, n);
}

/**
 * One x86 fused multiply-add of f32 values (a * b + c, rounded once) as this build's matmuls compute
 * their block steps: scalar and SIMD128 by the exact f64 emulation, relaxed by relaxed_madd. For tests.
 */
export function fmaProbe(a: f32, b: f32, c: f32): f32 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.extract_lane(f32x4.relaxed_madd(f32x4.splat(a), f32x4.splat(b), f32x4.splat(c)), 0);
  if (ASC_FEATURE_SIMD) return <f32>f64x2.extract_lane(fmaRound(f64x2.splat(<f64>a * <f64>b), f64x2.splat(<f64>c)), 0);
  return refFmaF32(a, b, c);
}

// ---- dequantization and activation conversion (Q8_0/Q8_1/Q8_K in SIMD, byte-identical to the scalar twin;
// the others scalar in every build) ----

/** dst f32[n] from one row of `type` at src; 0, or -1 for a type the kernels do not know. */
export function dequantizeRow(type: i32, src: usize, dst: usize, n: i32): i32 {
  return refDequantizeRow(type, src, dst, n);
}

export function quantizeRowsQ8_0(x: usize, dst: usize, cols: i32, nTok: i32): void {
  if (ASC_FEATURE_SIMD) simdQuantizeRowsQ8_0(x, dst, cols, nTok);
  else refQuantizeRowsQ8_0(x, dst, cols, nTok);
}
export function quantizeRowsQ8_1(x: usize, dst: usize, cols: i32, nTok: i32): void {
  if (ASC_FEATURE_SIMD) simdQuantizeRowsQ8_1(x, dst, cols, nTok);
  else refQuantizeRowsQ8_1(x, dst, cols, nTok);
}
export function quantizeRowsQ8_K(x: usize, dst: usize, cols: i32, nTok: i32): void {
  if (ASC_FEATURE_SIMD) simdQuantizeRowsQ8_K(x, dst, cols, nTok);
  else refQuantizeRowsQ8_K(x, dst, cols, nTok);
}
export function convertRowsF16(x: usize, dst: usize, cols: i32, nTok: i32): void {
  refConvertRowsF16(x, dst, cols, nTok);
}
export function convertRowsBF16(x: usize, dst: usize, cols: i32, nTok: i32): void {
  refConvertRowsBF16(x, dst, cols, nTok);
}

// ---- packed weight layouts (formats.ts): repacking at load, and rows read back ----

/** Packs rows x cols of `type` from file layout at src into its packed layout at dst; 0, -1 (bad
 *  type or sizes), or REPACK_NOT_FINITE (-2: F16 weights holding an infinity or NaN). */
export function repackRows(type: i32, src: usize, dst: usize, rows: i32, cols: i32): i32 {
  return refRepackRows(type, src, dst, rows, cols);
}

/** dst f32[cols] = row `row` of a packed matrix of `type`; 0, or -1 for a type that is not packed. */
export function dequantizePackedRow(type: i32, w: usize, cols: i32, row: i32, dst: usize): i32 {
  return refDequantizePackedRow(type, w, cols, row, dst);
}

// ---- matrix multiplies: out[t*rows + r] = dot(W row r, x row t), r in [rowStart, rowEnd), all
// nTok tokens; x holds the tokens' rows in the weight type's activation format. Q4_0, Q8_0, Q4_1,
// Q4_K and Q5_K weights are in their packed layouts (formats.ts), the others as in the file ----

// F32, F16, BF16: packed (F32x8, F16x8, BF16x8; simd/matmul-packed-float.ts). The file-layout kernels
// stay exported as matmulFile* for the tests and benchmarks that hold the packed ones to their bits.

export function matmulF32(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedF32(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedFloat(TYPE_F32, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedF16(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedFloat(TYPE_F16, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulBF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedBF16(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedFloat(TYPE_BF16, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulFileF32(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulF32(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_F32, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulFileF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulF16(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_F16, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulFileBF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulBF16(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_BF16, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ4_0(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ4_0(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q4_0, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ4_1(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedQ4_1(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedKQuant(TYPE_Q4_1, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ5_0(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ5_0(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q5_0, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ5_1(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ5_1(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q5_1, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ8_0(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ8_0(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q8_0, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ2_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ2_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q2_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ3_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ3_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q3_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ4_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedQ4_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedKQuant(TYPE_Q4_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ5_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedQ5_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedKQuant(TYPE_Q5_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulQ6_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulPackedQ6K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmulPackedQ6K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

/**
 * The file-layout Q4_1, Q4_K and Q5_K matmuls the packed ones (Q4_1x8, Q4_Kx8, Q5_Kx8) replace, for
 * tests and benchmarks: Q4_K and Q5_K give the same bits; Q4_1's SIMD ones sum in f32 lanes of their
 * own (within rounding of the packed kernels, which give the scalar twin's bits in every build).
 */
export function matmulFileQ4_1(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ4_1(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q4_1, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulFileQ4_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ4_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q4_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

export function matmulFileQ5_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ5_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q5_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

/** The file-layout Q6_K matmul the packed one (Q6_Kx8) replaces: same bits; tests and benchmarks. */
export function matmulFileQ6_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdMatmulQ6_K(w, x, out, cols, rows, nTok, rowStart, rowEnd);
  else refMatmul(TYPE_Q6_K, w, x, out, cols, rows, nTok, rowStart, rowEnd);
}

// ---- elementwise and attention (f32) ----

/** out = x / sqrt(mean(x^2) + eps) * weight, nTok rows of cols; weight 0 = none. */
export function rmsNorm(x: usize, weight: usize, out: usize, cols: i32, nTok: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) simdRmsNorm(x, weight, out, cols, nTok, eps);
  else refRmsNorm(x, weight, out, cols, nTok, eps);
}

// Fused rmsNorm + conversion (ref/norm-convert.ts): per token, the normed f32 row into out (exactly
// rmsNorm) and that row in the activation format into dst (exactly the converter). Split only by tokens.

export function rmsNormToQ8_0(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) simdRmsNormToQ8_0(x, weight, out, dst, cols, nTok, eps);
  else refRmsNormToQ8_0(x, weight, out, dst, cols, nTok, eps);
}
export function rmsNormToQ8_1(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) simdRmsNormToQ8_1(x, weight, out, dst, cols, nTok, eps);
  else refRmsNormToQ8_1(x, weight, out, dst, cols, nTok, eps);
}
export function rmsNormToQ8_K(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) simdRmsNormToQ8_K(x, weight, out, dst, cols, nTok, eps);
  else refRmsNormToQ8_K(x, weight, out, dst, cols, nTok, eps);
}
export function rmsNormToF16(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) simdRmsNormToF16(x, weight, out, dst, cols, nTok, eps);
  else refRmsNormToF16(x, weight, out, dst, cols, nTok, eps);
}
export function rmsNormToBF16(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) simdRmsNormToBF16(x, weight, out, dst, cols, nTok, eps);
  else refRmsNormToBF16(x, weight, out, dst, cols, nTok, eps);
}

/** Rotary embedding in place, adjacent pairs (i, i+1) (llama). See ref/rope.ts. */
export function ropeNorm(x: usize, nTok: i32, nHeads: i32, headDim: i32, nRot: i32, positions: usize, freqBase: f32, freqScale: f32, freqFactors: usize): void {
  rope(x, nTok, nHeads, headDim, nRot, positions, freqBase, freqScale, freqFactors, false);
}

/** Rotary embedding in place, pairs (i, i + nRot/2) (neox, qwen2). See ref/rope.ts. */
export function ropeNeox(x: usize, nTok: i32, nHeads: i32, headDim: i32, nRot: i32, positions: usize, freqBase: f32, freqScale: f32, freqFactors: usize): void {
  rope(x, nTok, nHeads, headDim, nRot, positions, freqBase, freqScale, freqFactors, true);
}

/**
 * Causal grouped-query attention of nTok queries at positions pos0.. over an f32 KV cache
 * [ctx][kvStride]; heads [headStart, headEnd). scratch: pos0 + nTok f32 per concurrent call. The
 * one-pass kernel: the engine runs attentionTiled, whose short-prompt bits are defined as these.
 */
export function attention(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdAttention(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
  else refAttention(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/**
 * attention() taking the keys ATTN_TILE_K at a time with a running max and sum (ref/attention-tiled.ts
 * states the recurrence): the same bits as attention() for queries that see at most ATTN_TILE_K keys.
 * scratch: attentionTiledScratchBytes() per concurrent call, whatever the context length.
 */
export function attentionTiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdAttentionTiled(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
  else refAttentionTiled(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/** Bytes of attentionTiled's workspace per concurrent call. */
export function attentionTiledScratchBytes(): i32 {
  return <i32>ATTN_TILE_SCRATCH_BYTES;
}

/** Keys per key tile of attentionTiled: queries seeing at most this many keep attention()'s bits. */
export function attentionTileKeys(): i32 {
  return ATTN_TILE_K;
}

/**
 * out = silu(gate) * up, n values, each on llama.cpp's ggml_v_expf (independent of how a range is
 * split; llama.cpp's exactly for rows that are multiples of 16). SIMD: simd/swiglu.ts, the same bits.
 */
export function siluMul(gate: usize, up: usize, out: usize, n: i32): void {
  if (ASC_FEATURE_SIMD) simdSiluMul(gate, up, out, n);
  else refSiluMul(gate, up, out, n);
}

/**
 * silu(gate) * up on nTok rows of `cols`, each exactly as llama.cpp's ggml_vec_swiglu_f32 (the C
 * library's expf on the last cols % 16 of each row). Split work only at row boundaries.
 */
export function siluMulRows(gate: usize, up: usize, out: usize, cols: i32, nTok: i32): void {
  if (ASC_FEATURE_SIMD) simdSiluMulRows(gate, up, out, cols, nTok);
  else refSiluMulRows(gate, up, out, cols, nTok);
}

/** dst += src, n values. */
export function addRows(dst: usize, src: usize, n: i32): void {
  if (ASC_FEATURE_SIMD) simdAddRows(dst, src, n);
  else refAddRows(dst, src, n);
}

/** x[t] += bias for nTok rows of cols. */
export function addBias(x: usize, bias: usize, cols: i32, nTok: i32): void {
  if (ASC_FEATURE_SIMD) simdAddBias(x, bias, cols, nTok);
  else refAddBias(x, bias, cols, nTok);
}

/** x *= s, n values. */
export function scaleRows(x: usize, s: f32, n: i32): void {
  if (ASC_FEATURE_SIMD) simdScaleRows(x, s, n);
  else refScaleRows(x, s, n);
}

// ---- reduced-precision KV cache (row layouts in ref/kv.ts) ----

/** nTok rows of cols f32 at src to f16 cache rows at dst. Scalar in every build: O(row) work. */
export function kvStoreF16(src: usize, dst: usize, cols: i32, nTok: i32): void {
  refKvStoreF16(src, dst, cols, nTok);
}

/**
 * nTok rows of f32 keys (nKVHeads*headDim) at positions pos.. to the int8 key cache whose row 0 is at k
 * (its f16 tail, then blocks quantized per channel: ref/kv.ts). Scalar in every build: O(row) work.
 */
export function kvStoreInt8Keys(src: usize, k: usize, nKVHeads: i32, headDim: i32, pos: i32, nTok: i32): void {
  refKvStoreInt8Keys(src, k, nKVHeads, headDim, pos, nTok);
}

/** nTok rows of nKVHeads*headDim f32 at src to int8 cache rows (a scale per head) at dst: values. */
export function kvStoreInt8(src: usize, dst: usize, nKVHeads: i32, headDim: i32, nTok: i32): void {
  if (ASC_FEATURE_SIMD) simdKvStoreInt8(src, dst, nKVHeads, headDim, nTok);
  else refKvStoreInt8(src, dst, nKVHeads, headDim, nTok);
}

/** attention() over an f16 KV cache: same arguments, cache rows of kvStride halves. */
export function attentionKvF16(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdAttentionKvF16(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
  else refAttentionKvF16(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/** attention() over an int8 KV cache: same arguments, int8 cache rows (scales, then values). */
export function attentionKvInt8(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdAttentionKvInt8(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
  else refAttentionKvInt8(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/**
 * attentionKvF16 taking the keys ATTN_TILE_K at a time with a running max and sum (ref/kv-tiled.ts):
 * the same bits for queries seeing at most ATTN_TILE_K keys. scratch: attentionKvTiledScratchBytes(headDim).
 */
export function attentionKvF16Tiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdAttentionKvF16Tiled(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
  else refAttentionKvF16Tiled(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/** attentionKvInt8, tiled as attentionKvF16Tiled (same rule and workspace). */
export function attentionKvInt8Tiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  if (ASC_FEATURE_SIMD) simdAttentionKvInt8Tiled(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
  else refAttentionKvInt8Tiled(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/** Bytes of attentionKvF16Tiled's / attentionKvInt8Tiled's workspace per concurrent call, whatever the context length. */
export function attentionKvTiledScratchBytes(headDim: i32): i32 {
  return <i32>kvTiledScratchBytes(headDim);
}
