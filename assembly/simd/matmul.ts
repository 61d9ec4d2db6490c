// SIMD128 / relaxed-SIMD matrix multiplies, one per weight type, same signatures and same math as the
// scalar twins in ref/matmul.ts: out[t*rows + r] = dot(W row r, x row t).
//
// Tiling: tokens are taken four at a time and, inside a tile, each weight block is decoded once and
// used for all four tokens (accumulators a0..a3, `if (nt > k)` guards for a short last tile), so a
// prefill of n tokens streams the weights n/4 times instead of n times. Decode (nTok = 1) is the
// same loop with one token.
//
// Q4_0 and Q8_0 weights are packed and have their own file (matmul-packed.ts).
//
// Integer parts are exact in every build. F16, Q4_0, Q5_0 and Q8_0 reproduce the float arithmetic of
// llama.cpp's x86 kernels (lane grouping, fused multiply-adds, reduction order; see their sections), so
// their results do not depend on the build and their scalar twins give the same bits. Q4_K, Q5_K and
// Q6_K reduce each block to the exact integer sums of the scalar twin (a horizontal add per block) and
// then take its float steps, so they too give the same bits in every build. Q4_1, Q5_1, Q2_K and Q3_K
// sum in f32 lanes of their own. The relaxed build uses the relaxed dots (i32x4 ..._add_s, and i16x8
// for the k-quants' pair sums ahead of an i16 dot with the group scale) only with the weights' unsigned
// quants (0..63) as the 7-bit operand, putting a format's zero point back with the activation block
// sums (Q8_K's bsums).
import {
  BYTES_Q4_0, BYTES_Q4_1, BYTES_Q5_0, BYTES_Q5_1, BYTES_Q8_0, BYTES_Q8_1,
  BYTES_Q2_K, BYTES_Q3_K, BYTES_Q4_K, BYTES_Q5_K, BYTES_Q6_K, BYTES_Q8_K,
} from '../formats';
import { bf16ToF32, f16ToF32, loadF16 } from '../half';
import { q3kScale, scaleMinK4 } from '../ref/kscales';
import {
  accScaled, bitsToFifthBit, dotAccU7, dotI8, evenI16, fmaLanes, halfLanesToF32, hsum8, hsumF32, hsumI32, hsumX86, oddI16,
  quadSums,
} from './lanes';

// @ts-ignore: decorator
@inline function storeTile(out: usize, rows: i32, r: i32, t0: i32, nt: i32, a0: v128, a1: v128, a2: v128, a3: v128): void {
  const p = out + ((<usize>t0 * rows + r) << 2);
  const step = <usize>rows << 2;
  store<f32>(p, hsumF32(a0));
  if (nt > 1) store<f32>(p + step, hsumF32(a1));
  if (nt > 2) store<f32>(p + 2 * step, hsumF32(a2));
  if (nt > 3) store<f32>(p + 3 * step, hsumF32(a3));
}

// @ts-ignore: decorator
@inline function storeScalarTile(out: usize, rows: i32, r: i32, t0: i32, nt: i32, a0: f32, a1: f32, a2: f32, a3: f32): void {
  const p = out + ((<usize>t0 * rows + r) << 2);
  const step = <usize>rows << 2;
  store<f32>(p, a0);
  if (nt > 1) store<f32>(p + step, a1);
  if (nt > 2) store<f32>(p + 2 * step, a2);
  if (nt > 3) store<f32>(p + 3 * step, a3);
}

// ===================== float weights =====================

/** F32 weights, raw f32 activations. */
export function simdMatmulF32(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const xRow = <usize>cols << 2;
  const n4 = cols & ~3;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * xRow;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let i = 0; i < n4; i += 4) {
        const o = <usize>i << 2;
        const wv = v128.load(wr + o);
        a0 = f32x4.add(a0, f32x4.mul(wv, v128.load(x0 + o)));
        if (nt > 1) a1 = f32x4.add(a1, f32x4.mul(wv, v128.load(x1 + o)));
        if (nt > 2) a2 = f32x4.add(a2, f32x4.mul(wv, v128.load(x2 + o)));
        if (nt > 3) a3 = f32x4.add(a3, f32x4.mul(wv, v128.load(x3 + o)));
      }
      for (let i = n4; i < cols; i++) {
        const o = <usize>i << 2;
        const wv = f32x4.replace_lane(f32x4.splat(0), 0, load<f32>(wr + o));
        a0 = f32x4.add(a0, f32x4.mul(wv, f32x4.splat(load<f32>(x0 + o))));
        if (nt > 1) a1 = f32x4.add(a1, f32x4.mul(wv, f32x4.splat(load<f32>(x1 + o))));
        if (nt > 2) a2 = f32x4.add(a2, f32x4.mul(wv, f32x4.splat(load<f32>(x2 + o))));
        if (nt > 3) a3 = f32x4.add(a3, f32x4.mul(wv, f32x4.splat(load<f32>(x3 + o))));
      }
      storeTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

/** Eight 16-bit floats at p as two f32x4 (lanes 0..3, 4..7). */
// @ts-ignore: decorator
@inline function lo16(p: usize, bf: bool): v128 {
  const h = i32x4.extend_low_i16x8_u(v128.load(p));
  return bf ? i32x4.shl(h, 16) : halfLanesToF32(h);
}
// @ts-ignore: decorator
@inline function hi16(p: usize, bf: bool): v128 {
  const h = i32x4.extend_high_i16x8_u(v128.load(p));
  return bf ? i32x4.shl(h, 16) : halfLanesToF32(h);
}
// @ts-ignore: decorator
@inline function tok16(acc: v128, wl: v128, wh: v128, xp: usize, bf: bool): v128 {
  return f32x4.add(acc, f32x4.add(f32x4.mul(wl, lo16(xp, bf)), f32x4.mul(wh, hi16(xp, bf))));
}
// @ts-ignore: decorator
@inline function scalar16(p: usize, bf: bool): f32 {
  return bf ? bf16ToF32(load<u16>(p)) : f16ToF32(load<u16>(p));
}
// @ts-ignore: decorator
@inline function tail16(acc: v128, wv: f32, xp: usize, bf: bool): v128 {
  return f32x4.add(acc, f32x4.replace_lane(f32x4.splat(0), 0, wv * scalar16(xp, bf)));
}

/** 16-bit float weights and activations (BF16 when `bf`), products summed in four f32 lanes. */
// @ts-ignore: decorator
@inline function matmul16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32, bf: bool): void {
  const xRow = <usize>cols << 1;
  const n8 = cols & ~7;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * xRow;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let i = 0; i < n8; i += 8) {
        const o = <usize>i << 1;
        const wl = lo16(wr + o, bf), wh = hi16(wr + o, bf);
        a0 = tok16(a0, wl, wh, x0 + o, bf);
        if (nt > 1) a1 = tok16(a1, wl, wh, x1 + o, bf);
        if (nt > 2) a2 = tok16(a2, wl, wh, x2 + o, bf);
        if (nt > 3) a3 = tok16(a3, wl, wh, x3 + o, bf);
      }
      for (let i = n8; i < cols; i++) {
        const o = <usize>i << 1;
        const wv = scalar16(wr + o, bf);
        a0 = tail16(a0, wv, x0 + o, bf);
        if (nt > 1) a1 = tail16(a1, wv, x1 + o, bf);
        if (nt > 2) a2 = tail16(a2, wv, x2 + o, bf);
        if (nt > 3) a3 = tail16(a3, wv, x3 + o, bf);
      }
      storeTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

// ===================== F16 in llama.cpp's x86 order =====================
// ggml_vec_dot_f16 on AVX-512 (the F16 dot of every F16 matmul whose row length is not a multiple of
// 16, and of every decode step): 64 lanes (four 16-wide accumulators) take elements i = lane mod 64 of
// each whole 64-element chunk in order; the four accumulators are folded (0+2, 1+3, then 0+1) and
// reduced by _mm512_reduce_add_ps (halves: 8, 4, 2, 1 lanes); the remaining cols % 64 products are
// then added one by one in f64. An F16 product is exact in f32, so the fused multiply-adds of the
// original are plain multiply-adds here.
//
// Lane groups: A_q (q = 0..15) is the f32x4 of lanes 4q..4q+3 summed over the chunks. After the folds,
// S_k = (A_k + A_{k+8}) + (A_{k+4} + A_{k+12}) for k = 0..3, then T0 = S_0 + S_2, T1 = S_1 + S_3,
// U = T0 + T1 and the result (U0 + U2) + (U1 + U3). The groups are visited in the order that builds
// S_0, S_2, S_1, S_3 one after the other, so only a few partial sums per token are live at a time.

/** Four IEEE halves at p as f32x4. */
// @ts-ignore: decorator
@inline function half4(p: usize): v128 {
  return halfLanesToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(p)));
}

/** The f64 tail of ggml_vec_dot_f16 for one token: sum + products n64..cols-1, rounded to f32. */
// @ts-ignore: decorator
@inline function tailF16(sum: f32, wr: usize, xt: usize, n64: i32, cols: i32): f32 {
  let s = <f64>sum;
  for (let i = n64; i < cols; i++) {
    const o = <usize>i << 1;
    s += <f64>(f16ToF32(load<u16>(wr + o)) * f16ToF32(load<u16>(xt + o)));
  }
  return <f32>s;
}

export function simdMatmulF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const xRow = <usize>cols << 1;
  const nChunks = cols >> 6, n64 = nChunks << 6;
  const zero = f32x4.splat(0);
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * xRow;
      // per token: P, Q (halves of the S_k being built), T0, T1
      let p0 = zero, p1 = zero, p2 = zero, p3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero;
      let u0 = zero, u1 = zero, u2 = zero, u3 = zero, v0 = zero, v1 = zero, v2 = zero, v3 = zero;
      for (let i = 0; i < 16; i++) {
        const k = ((i >> 1) & 2) | ((i >> 3) & 1); // S_k built in the order k = 0, 2, 1, 3
        const g = k + ((i & 1) << 3) + ((i & 2) << 1); // A_k, A_{k+8}, A_{k+4}, A_{k+12}
        const off = <usize>g << 3;
        let g0 = zero, g1 = zero, g2 = zero, g3 = zero;
        for (let c = 0; c < nChunks; c++) {
          const o = (<usize>c << 7) + off;
          const wv = half4(wr + o);
          g0 = f32x4.add(g0, f32x4.mul(wv, half4(x0 + o)));
          if (nt > 1) g1 = f32x4.add(g1, f32x4.mul(wv, half4(x1 + o)));
          if (nt > 2) g2 = f32x4.add(g2, f32x4.mul(wv, half4(x2 + o)));
          if (nt > 3) g3 = f32x4.add(g3, f32x4.mul(wv, half4(x3 + o)));
        }
        if ((i & 3) == 0) {
          p0 = g0; p1 = g1; p2 = g2; p3 = g3;
        } else if ((i & 3) == 1) {
          p0 = f32x4.add(p0, g0); p1 = f32x4.add(p1, g1); p2 = f32x4.add(p2, g2); p3 = f32x4.add(p3, g3);
        } else if ((i & 3) == 2) {
          q0 = g0; q1 = g1; q2 = g2; q3 = g3;
        } else {
          // S_k = P + Q, folded into T0 (k = 0, 2) or T1 (k = 1, 3)
          const s0 = f32x4.add(p0, f32x4.add(q0, g0)), s1 = f32x4.add(p1, f32x4.add(q1, g1));
          const s2 = f32x4.add(p2, f32x4.add(q2, g2)), s3 = f32x4.add(p3, f32x4.add(q3, g3));
          const blk = i >> 2;
          if (blk == 0) { u0 = s0; u1 = s1; u2 = s2; u3 = s3; }
          else if (blk == 1) { u0 = f32x4.add(u0, s0); u1 = f32x4.add(u1, s1); u2 = f32x4.add(u2, s2); u3 = f32x4.add(u3, s3); }
          else if (blk == 2) { v0 = s0; v1 = s1; v2 = s2; v3 = s3; }
          else { v0 = f32x4.add(v0, s0); v1 = f32x4.add(v1, s1); v2 = f32x4.add(v2, s2); v3 = f32x4.add(v3, s3); }
        }
      }
      const p = out + ((<usize>t0 * rows + r) << 2);
      const step = <usize>rows << 2;
      store<f32>(p, tailF16(hsumX86(f32x4.add(u0, v0)), wr, x0, n64, cols));
      if (nt > 1) store<f32>(p + step, tailF16(hsumX86(f32x4.add(u1, v1)), wr, x1, n64, cols));
      if (nt > 2) store<f32>(p + 2 * step, tailF16(hsumX86(f32x4.add(u2, v2)), wr, x2, n64, cols));
      if (nt > 3) store<f32>(p + 3 * step, tailF16(hsumX86(f32x4.add(u3, v3)), wr, x3, n64, cols));
    }
  }
}

/** BF16 weights with BF16 activations; products summed in f32 lanes. */
export function simdMatmulBF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  matmul16(w, x, out, cols, rows, nTok, rowStart, rowEnd, true);
}

// ===================== Q4_1, Q5_1 (Q8_1 activations) =====================

/**
 * Integer dot of one 32-weight block (unsigned quants: `lo` weights 0..15, `hi` 16..31, all < 32) with
 * a Q8_1 activation block's quants at xq.
 */
// @ts-ignore: decorator
@inline function blockDot32(xq: usize, lo: v128, hi: v128): v128 {
  const xl = v128.load(xq), xh = v128.load(xq + 16);
  if (ASC_FEATURE_RELAXED_SIMD) return dotAccU7(dotAccU7(i32x4.splat(0), xl, lo), xh, hi);
  return i32x4.add(dotI8(xl, lo), dotI8(xh, hi));
}

/** Q4_1/Q5_1 step for one token: a + isum * (dw * dx) + m * s (s = dx * sum of the quants). */
// @ts-ignore: decorator
@inline function tokMin(a: v128, xb: usize, lo: v128, hi: v128, dw: f32, m: f32): v128 {
  const acc = accScaled(a, blockDot32(xb + 4, lo, hi), dw * loadF16(xb));
  return f32x4.add(acc, f32x4.replace_lane(f32x4.splat(0), 0, m * loadF16(xb + 2)));
}

export function simdMatmulQ4_1(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 5;
  const wRow = <usize>nb * BYTES_Q4_1, xRow = <usize>nb * BYTES_Q8_1;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * BYTES_Q4_1, xo = <usize>b * BYTES_Q8_1;
        const dw = loadF16(wb), m = loadF16(wb + 2);
        const qs = v128.load(wb + 4);
        const lo = v128.and(qs, i8x16.splat(15)), hi = i8x16.shr_u(qs, 4);
        a0 = tokMin(a0, x0 + xo, lo, hi, dw, m);
        if (nt > 1) a1 = tokMin(a1, x1 + xo, lo, hi, dw, m);
        if (nt > 2) a2 = tokMin(a2, x2 + xo, lo, hi, dw, m);
        if (nt > 3) a3 = tokMin(a3, x3 + xo, lo, hi, dw, m);
      }
      storeTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

export function simdMatmulQ5_1(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 5;
  const wRow = <usize>nb * BYTES_Q5_1, xRow = <usize>nb * BYTES_Q8_1;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * BYTES_Q5_1, xo = <usize>b * BYTES_Q8_1;
        const dw = loadF16(wb), m = loadF16(wb + 2);
        const qh = load<u32>(wb + 4);
        const qs = v128.load(wb + 8);
        const lo = v128.or(v128.and(qs, i8x16.splat(15)), bitsToFifthBit(qh & 0xffff));
        const hi = v128.or(i8x16.shr_u(qs, 4), bitsToFifthBit(qh >> 16));
        a0 = tokMin(a0, x0 + xo, lo, hi, dw, m);
        if (nt > 1) a1 = tokMin(a1, x1 + xo, lo, hi, dw, m);
        if (nt > 2) a2 = tokMin(a2, x2 + xo, lo, hi, dw, m);
        if (nt > 3) a3 = tokMin(a3, x3 + xo, lo, hi, dw, m);
      }
      storeTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

// ===================== Q5_0 in llama.cpp's x86 order =====================
// llama.cpp on x86 (AVX2/AVX-512) multiplies Q4_0, Q5_0 and Q8_0 by ggml_vec_dot_<type>_q8_0 (one
// token) and by tinyBLAS_Q0_AVX (batches), both the same arithmetic per output: eight f32 lanes, lane i
// taking the exact integer sum over weights 4i..4i+3 of each block, accumulated block by block with one
// fused multiply-add by d = f32(d_w * d_x), then hsum_float_8. Q4_0 matrices whose row count is a
// multiple of 8 are repacked instead (CPU_REPACK, block_q4_0x8, ggml_gemv/gemm_q4_0_8x8_q8_0): there
// each output has one f32 accumulator, acc = fma(f32(block's integer sum), d, acc). The fused
// multiply-adds round once, as x86's vfmadd does: in f64 with the exact emulation of lanes.ts
// (fmaLanes), in every build (Q5_0 is not worth a relaxed_madd path of its own). Q4_0 and Q8_0 read
// their packed layouts (matmul-packed.ts); Q5_0 stays in file layout, here.

/** Q5_0 weights 0..15 (`high` false) or 16..31 of a block as signed bytes. */
// @ts-ignore: decorator
@inline function weightsQ5_0(wb: usize, high: bool): v128 {
  const qs = v128.load(wb + 6);
  const nib = high ? i8x16.shr_u(qs, 4) : v128.and(qs, i8x16.splat(15));
  const qh = load<u32>(wb + 2);
  return i8x16.sub(v128.or(nib, bitsToFifthBit(high ? qh >> 16 : qh & 0xffff)), i8x16.splat(16));
}

export function simdMatmulQ5_0(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 5;
  const wRow = <usize>nb * BYTES_Q5_0, xRow = <usize>nb * BYTES_Q8_0;
  const zero = f64x2.splat(0);
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      // eight lanes per token as four f64x2 (lanes 0-1, 2-3, 4-5, 6-7)
      let a0 = zero, b0 = zero, c0 = zero, d0 = zero, a1 = zero, b1 = zero, c1 = zero, d1 = zero;
      let a2 = zero, b2 = zero, c2 = zero, d2 = zero, a3 = zero, b3 = zero, c3 = zero, d3 = zero;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * BYTES_Q5_0, xo = <usize>b * BYTES_Q8_0;
        const dw = loadF16(wb);
        const lo = weightsQ5_0(wb, false), hi = weightsQ5_0(wb, true);
        const e1 = evenI16(lo), o1 = oddI16(lo), e2 = evenI16(hi), o2 = oddI16(hi);
        let xb = x0 + xo;
        let d = f64x2.splat(<f64>(dw * loadF16(xb)));
        let lanes = quadSums(xb + 2, e1, o1);
        a0 = fmaLanes(a0, lanes, false, d); b0 = fmaLanes(b0, lanes, true, d);
        lanes = quadSums(xb + 18, e2, o2);
        c0 = fmaLanes(c0, lanes, false, d); d0 = fmaLanes(d0, lanes, true, d);
        if (nt > 1) {
          xb = x1 + xo; d = f64x2.splat(<f64>(dw * loadF16(xb)));
          lanes = quadSums(xb + 2, e1, o1);
          a1 = fmaLanes(a1, lanes, false, d); b1 = fmaLanes(b1, lanes, true, d);
          lanes = quadSums(xb + 18, e2, o2);
          c1 = fmaLanes(c1, lanes, false, d); d1 = fmaLanes(d1, lanes, true, d);
        }
        if (nt > 2) {
          xb = x2 + xo; d = f64x2.splat(<f64>(dw * loadF16(xb)));
          lanes = quadSums(xb + 2, e1, o1);
          a2 = fmaLanes(a2, lanes, false, d); b2 = fmaLanes(b2, lanes, true, d);
          lanes = quadSums(xb + 18, e2, o2);
          c2 = fmaLanes(c2, lanes, false, d); d2 = fmaLanes(d2, lanes, true, d);
        }
        if (nt > 3) {
          xb = x3 + xo; d = f64x2.splat(<f64>(dw * loadF16(xb)));
          lanes = quadSums(xb + 2, e1, o1);
          a3 = fmaLanes(a3, lanes, false, d); b3 = fmaLanes(b3, lanes, true, d);
          lanes = quadSums(xb + 18, e2, o2);
          c3 = fmaLanes(c3, lanes, false, d); d3 = fmaLanes(d3, lanes, true, d);
        }
      }
      const p = out + ((<usize>t0 * rows + r) << 2);
      const step = <usize>rows << 2;
      store<f32>(p, hsum8(a0, b0, c0, d0));
      if (nt > 1) store<f32>(p + step, hsum8(a1, b1, c1, d1));
      if (nt > 2) store<f32>(p + 2 * step, hsum8(a2, b2, c2, d2));
      if (nt > 3) store<f32>(p + 3 * step, hsum8(a3, b3, c3, d3));
    }
  }
}

// ===================== k-quants (Q8_K activations) =====================
// Q8_K block: d f32 at 0, qs[256] at 4, bsums[16] (i16) at 260. All k-quant weights are decoded to
// their unsigned quants (0..63); an offset (Q3_K 4, Q6_K 32) returns through the bsums.

/** ia + s0 * dot(x[0..15], q0) + s1 * dot(x[16..31], q1): two 16-weight groups with their scales. */
// @ts-ignore: decorator
@inline function groups16(ia: v128, xq: usize, q0: v128, q1: v128, s0: i32, s1: i32): v128 {
  const zero = i32x4.splat(0);
  const d0 = i32x4.mul(dotAccU7(zero, v128.load(xq), q0), i32x4.splat(s0));
  const d1 = i32x4.mul(dotAccU7(zero, v128.load(xq + 16), q1), i32x4.splat(s1));
  return i32x4.add(ia, i32x4.add(d0, d1));
}

/** ia + s * dot(x[0..31], q0|q1): one 32-weight sub-block with one scale (Q4_K, Q5_K). */
// @ts-ignore: decorator
@inline function group32(ia: v128, xq: usize, q0: v128, q1: v128, s: i32): v128 {
  const d = dotAccU7(dotAccU7(i32x4.splat(0), v128.load(xq), q0), v128.load(xq + 16), q1);
  return i32x4.add(ia, i32x4.mul(d, i32x4.splat(s)));
}

/** i32x4 whose lanes sum to sum over g of bsums[g] * s[g], s given as two i16x8 (groups 0..7, 8..15). */
// @ts-ignore: decorator
@inline function bsumDot(xb: usize, sLo: v128, sHi: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(v128.load(xb + 260), sLo), i32x4.dot_i16x8_s(v128.load(xb + 276), sHi));
}

/** Q2_K/Q3_K/Q6_K finish for one token: a + (ia - offset * sum_g s_g bsums_g) * (d * dy). */
// @ts-ignore: decorator
@inline function finishOffset(a: v128, ia: v128, xb: usize, sLo: v128, sHi: v128, shift: i32, d: f32): v128 {
  const isum = i32x4.sub(ia, i32x4.shl(bsumDot(xb, sLo, sHi), shift));
  return accScaled(a, isum, d * load<f32>(xb));
}

export function simdMatmulQ2_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 8;
  const wRow = <usize>nb * BYTES_Q2_K, xRow = <usize>nb * BYTES_Q8_K;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * BYTES_Q2_K, xo = <usize>b * BYTES_Q8_K;
        const zero = i32x4.splat(0);
        let i0 = zero, i1 = zero, i2 = zero, i3 = zero;
        for (let n = 0; n < 2; n++) {
          const qa = v128.load(wb + 16 + (n << 5)), qb = v128.load(wb + 32 + (n << 5));
          for (let j = 0; j < 4; j++) {
            const g = (n << 3) + (j << 1);
            const s0 = <i32>load<u8>(wb + g) & 15, s1 = <i32>load<u8>(wb + g + 1) & 15;
            const q0 = v128.and(i8x16.shr_u(qa, j << 1), i8x16.splat(3));
            const q1 = v128.and(i8x16.shr_u(qb, j << 1), i8x16.splat(3));
            const xq = xo + 4 + (<usize>g << 4);
            i0 = groups16(i0, x0 + xq, q0, q1, s0, s1);
            if (nt > 1) i1 = groups16(i1, x1 + xq, q0, q1, s0, s1);
            if (nt > 2) i2 = groups16(i2, x2 + xq, q0, q1, s0, s1);
            if (nt > 3) i3 = groups16(i3, x3 + xq, q0, q1, s0, s1);
          }
        }
        // The mins (high nibbles of scales) meet the activations only through the bsums.
        const mins = i8x16.shr_u(v128.load(wb), 4);
        const mLo = i16x8.extend_low_i8x16_u(mins), mHi = i16x8.extend_high_i8x16_u(mins);
        const d = loadF16(wb + 80), dmin = loadF16(wb + 82);
        a0 = finishMin(accScaled(a0, i0, d * load<f32>(x0 + xo)), x0 + xo, mLo, mHi, dmin);
        if (nt > 1) a1 = finishMin(accScaled(a1, i1, d * load<f32>(x1 + xo)), x1 + xo, mLo, mHi, dmin);
        if (nt > 2) a2 = finishMin(accScaled(a2, i2, d * load<f32>(x2 + xo)), x2 + xo, mLo, mHi, dmin);
        if (nt > 3) a3 = finishMin(accScaled(a3, i3, d * load<f32>(x3 + xo)), x3 + xo, mLo, mHi, dmin);
      }
      storeTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

/** a - (sum_g m_g bsums_g) * (dmin * dy), the min term of Q2_K (mins per 16 given as two i16x8). */
// @ts-ignore: decorator
@inline function finishMin(a: v128, xb: usize, mLo: v128, mHi: v128, dmin: f32): v128 {
  const msum = f32x4.convert_i32x4_s(bsumDot(xb, mLo, mHi));
  return f32x4.sub(a, f32x4.mul(msum, f32x4.splat(dmin * load<f32>(xb))));
}

export function simdMatmulQ3_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 8;
  const wRow = <usize>nb * BYTES_Q3_K, xRow = <usize>nb * BYTES_Q8_K;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * BYTES_Q3_K, xo = <usize>b * BYTES_Q8_K;
        const sc = wb + 96;
        const zero = i32x4.splat(0);
        let i0 = zero, i1 = zero, i2 = zero, i3 = zero;
        const ha = v128.load(wb), hb = v128.load(wb + 16);
        for (let n = 0; n < 2; n++) {
          const qa = v128.load(wb + 32 + (n << 5)), qb = v128.load(wb + 48 + (n << 5));
          for (let j = 0; j < 4; j++) {
            const g = (n << 3) + (j << 1);
            const s0 = q3kScale(sc, g), s1 = q3kScale(sc, g + 1);
            const hbit = (n << 2) + j;
            // quant = low 2 bits | high bit << 2, in 0..7; the weight is quant - 4
            const q0 = v128.or(v128.and(i8x16.shr_u(qa, j << 1), i8x16.splat(3)), i8x16.shl(v128.and(i8x16.shr_u(ha, hbit), i8x16.splat(1)), 2));
            const q1 = v128.or(v128.and(i8x16.shr_u(qb, j << 1), i8x16.splat(3)), i8x16.shl(v128.and(i8x16.shr_u(hb, hbit), i8x16.splat(1)), 2));
            const xq = xo + 4 + (<usize>g << 4);
            i0 = groups16(i0, x0 + xq, q0, q1, s0, s1);
            if (nt > 1) i1 = groups16(i1, x1 + xq, q0, q1, s0, s1);
            if (nt > 2) i2 = groups16(i2, x2 + xq, q0, q1, s0, s1);
            if (nt > 3) i3 = groups16(i3, x3 + xq, q0, q1, s0, s1);
          }
        }
        let sLo = i16x8.splat(0), sHi = i16x8.splat(0);
        sLo = i16x8.replace_lane(sLo, 0, <i16>q3kScale(sc, 0));
        sLo = i16x8.replace_lane(sLo, 1, <i16>q3kScale(sc, 1));
        sLo = i16x8.replace_lane(sLo, 2, <i16>q3kScale(sc, 2));
        sLo = i16x8.replace_lane(sLo, 3, <i16>q3kScale(sc, 3));
        sLo = i16x8.replace_lane(sLo, 4, <i16>q3kScale(sc, 4));
        sLo = i16x8.replace_lane(sLo, 5, <i16>q3kScale(sc, 5));
        sLo = i16x8.replace_lane(sLo, 6, <i16>q3kScale(sc, 6));
        sLo = i16x8.replace_lane(sLo, 7, <i16>q3kScale(sc, 7));
        sHi = i16x8.replace_lane(sHi, 0, <i16>q3kScale(sc, 8));
        sHi = i16x8.replace_lane(sHi, 1, <i16>q3kScale(sc, 9));
        sHi = i16x8.replace_lane(sHi, 2, <i16>q3kScale(sc, 10));
        sHi = i16x8.replace_lane(sHi, 3, <i16>q3kScale(sc, 11));
        sHi = i16x8.replace_lane(sHi, 4, <i16>q3kScale(sc, 12));
        sHi = i16x8.replace_lane(sHi, 5, <i16>q3kScale(sc, 13));
        sHi = i16x8.replace_lane(sHi, 6, <i16>q3kScale(sc, 14));
        sHi = i16x8.replace_lane(sHi, 7, <i16>q3kScale(sc, 15));
        const d = loadF16(wb + 108);
        a0 = finishOffset(a0, i0, x0 + xo, sLo, sHi, 2, d);
        if (nt > 1) a1 = finishOffset(a1, i1, x1 + xo, sLo, sHi, 2, d);
        if (nt > 2) a2 = finishOffset(a2, i2, x2 + xo, sLo, sHi, 2, d);
        if (nt > 3) a3 = finishOffset(a3, i3, x3 + xo, sLo, sHi, 2, d);
      }
      storeTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

/**
 * Q4_K/Q5_K: ia + s * dot(x[0..31], q0|q1) for one 32-weight sub-block (q in 0..31), s an i16x8 splat
 * of its 6-bit scale: the two halves' pair sums add in i16 (|sum| <= 4 * 128 * 31) before the scale.
 */
// @ts-ignore: decorator
@inline function group32U5(ia: v128, xp: usize, q0: v128, q1: v128, s: v128): v128 {
  const p = i16x8.add(pairSumsU6(v128.load(xp), q0), pairSumsU6(v128.load(xp + 16), q1));
  return i32x4.add(ia, i32x4.dot_i16x8_s(p, s));
}

/** Q5_K: 0x10 in each byte of H that has all bits of `mask` (one bit) set. */
// @ts-ignore: decorator
@inline function fifthBit(H: v128, mask: v128): v128 {
  return v128.and(i8x16.eq(v128.and(H, mask), mask), i8x16.splat(0x10));
}

/**
 * One token's finish of a Q4_K/Q5_K block: a + (dy * d) * f32(isum) - (dy * dmin) * f32(msum), the
 * scalar twin's float steps, with isum the lanes of ia summed and msum = sum_j m_j (bsums_2j +
 * bsums_2j+1) from mA/mB (i16 lanes m0 m0 m1 m1 .. m3 m3 and m4 m4 .. m7 m7). Both sums exact.
 */
// @ts-ignore: decorator
@inline function finishK45(a: f32, ia: v128, xb: usize, mA: v128, mB: v128, d: f32, dmin: f32): f32 {
  const m = i32x4.add(i32x4.dot_i16x8_s(v128.load(xb + 260), mA), i32x4.dot_i16x8_s(v128.load(xb + 276), mB));
  // lane 0: isum, lane 2: msum
  const u = i32x4.add(i32x4.shuffle(ia, m, 0, 1, 4, 5), i32x4.shuffle(ia, m, 2, 3, 6, 7));
  const v = i32x4.add(u, i32x4.shuffle(u, u, 1, 0, 3, 2));
  const dy = load<f32>(xb);
  return a + (dy * d * <f32>i32x4.extract_lane(v, 0) - dy * dmin * <f32>i32x4.extract_lane(v, 2));
}

/**
 * Q4_K (five = false) and Q5_K (five = true): 8 sub-blocks of 32, 6-bit scale and min each. Per block,
 * the exact integers isum = sum_j sc_j * sum q x and msum, then the scalar twin's float steps
 * (acc += (dy * d) * f32(isum) - (dy * dmin) * f32(msum)): every build gives dotQ45_K's bits.
 */
// @ts-ignore: decorator
@inline function matmulK45(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32, five: bool): void {
  const nb = cols >> 8;
  const wBytes: usize = five ? BYTES_Q5_K : BYTES_Q4_K;
  const qsOff: usize = five ? 48 : 16;
  const wRow = <usize>nb * wBytes, xRow = <usize>nb * BYTES_Q8_K;
  const m = i8x16.splat(15);
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * wBytes, xo = <usize>b * BYTES_Q8_K;
        const sc = wb + 4;
        const zero = i32x4.splat(0);
        let i0 = zero, i1 = zero, i2 = zero, i3 = zero;
        let ha = zero, hb = zero;
        if (five) { ha = v128.load(wb + 16); hb = v128.load(wb + 32); }
        for (let k = 0; k < 4; k++) {
          // sub-blocks 2k (low nibbles) and 2k+1 (high nibbles) of qs[32k..32k+31]
          const qa = v128.load(wb + qsOff + (<usize>k << 5)), qb = v128.load(wb + qsOff + 16 + (<usize>k << 5));
          let l0 = v128.and(qa, m), l1 = v128.and(qb, m);
          let h0 = v128.and(i16x8.shr_u(qa, 4), m), h1 = v128.and(i16x8.shr_u(qb, 4), m);
          if (five) {
            // bit 2k of qh[l] is the fifth bit of sub-block 2k, bit 2k+1 that of sub-block 2k+1
            const bit: i32 = 1 << (k << 1);
            const bl = i8x16.splat(<i8>bit), bh = i8x16.splat(<i8>(bit << 1));
            l0 = v128.or(l0, fifthBit(ha, bl)); l1 = v128.or(l1, fifthBit(hb, bl));
            h0 = v128.or(h0, fifthBit(ha, bh)); h1 = v128.or(h1, fifthBit(hb, bh));
          }
          const sLow = i16x8.splat(<i16>(scaleMinK4(sc, k << 1) & 63)), sHigh = i16x8.splat(<i16>(scaleMinK4(sc, (k << 1) + 1) & 63));
          const xq = xo + 4 + (<usize>k << 6);
          i0 = group32U5(group32U5(i0, x0 + xq, l0, l1, sLow), x0 + xq + 32, h0, h1, sHigh);
          if (nt > 1) i1 = group32U5(group32U5(i1, x1 + xq, l0, l1, sLow), x1 + xq + 32, h0, h1, sHigh);
          if (nt > 2) i2 = group32U5(group32U5(i2, x2 + xq, l0, l1, sLow), x2 + xq + 32, h0, h1, sHigh);
          if (nt > 3) i3 = group32U5(group32U5(i3, x3 + xq, l0, l1, sLow), x3 + xq + 32, h0, h1, sHigh);
        }
        let mA = zero, mB = zero;
        mA = i32x4.replace_lane(mA, 0, scaleMinK4(sc, 0) >> 8);
        mA = i32x4.replace_lane(mA, 1, scaleMinK4(sc, 1) >> 8);
        mA = i32x4.replace_lane(mA, 2, scaleMinK4(sc, 2) >> 8);
        mA = i32x4.replace_lane(mA, 3, scaleMinK4(sc, 3) >> 8);
        mB = i32x4.replace_lane(mB, 0, scaleMinK4(sc, 4) >> 8);
        mB = i32x4.replace_lane(mB, 1, scaleMinK4(sc, 5) >> 8);
        mB = i32x4.replace_lane(mB, 2, scaleMinK4(sc, 6) >> 8);
        mB = i32x4.replace_lane(mB, 3, scaleMinK4(sc, 7) >> 8);
        // each min (0..63) in both i16 halves of its lane, to meet bsums 2j and 2j+1 in one i16 dot
        mA = v128.or(mA, i32x4.shl(mA, 16));
        mB = v128.or(mB, i32x4.shl(mB, 16));
        const d = loadF16(wb), dmin = loadF16(wb + 2);
        a0 = finishK45(a0, i0, x0 + xo, mA, mB, d, dmin);
        if (nt > 1) a1 = finishK45(a1, i1, x1 + xo, mA, mB, d, dmin);
        if (nt > 2) a2 = finishK45(a2, i2, x2 + xo, mA, mB, d, dmin);
        if (nt > 3) a3 = finishK45(a3, i3, x3 + xo, mA, mB, d, dmin);
      }
      storeScalarTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}

export function simdMatmulQ4_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  matmulK45(w, x, out, cols, rows, nTok, rowStart, rowEnd, false);
}

export function simdMatmulQ5_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  matmulK45(w, x, out, cols, rows, nTok, rowStart, rowEnd, true);
}

/**
 * i16x8 sums of adjacent pairs x[2i]*q[2i] + x[2i+1]*q[2i+1], x signed bytes, q in 0..63: exact
 * (|sum| <= 2 * 128 * 63). Relaxed: one relaxed i16 dot (q is its 7-bit operand, exact on every engine).
 */
// @ts-ignore: decorator
@inline function pairSumsU6(x: v128, q: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(x, q);
  return i16x8.add(i16x8.mul(evenI16(x), v128.and(q, i16x8.splat(0xff))), i16x8.mul(oddI16(x), i16x8.shr_u(q, 8)));
}

/** ia + s * dot(x[0..15], q): one 16-weight group, s an i16x8 splat of its scale (exact). */
// @ts-ignore: decorator
@inline function group16(ia: v128, xp: usize, q: v128, s: v128): v128 {
  return i32x4.add(ia, i32x4.dot_i16x8_s(pairSumsU6(v128.load(xp), q), s));
}

/**
 * Q6_K: 16 weights of one part from their low-nibble bytes L (high nibble when `high`) and qh bytes
 * H, whose bits 2p..2p+1 are the top two bits; q = nibble | top << 4 (0..63). The i16 shifts stay
 * inside each byte once masked, so no i8 shift (which engines emulate) is needed.
 */
// @ts-ignore: decorator
@inline function q6Quants(L: v128, H: v128, p: i32): v128 {
  const nib = p < 2 ? v128.and(L, i8x16.splat(15)) : v128.and(i16x8.shr_u(L, 4), i8x16.splat(15));
  const top = p == 0 ? i16x8.shl(H, 4) : p == 1 ? i16x8.shl(H, 2) : p == 2 ? H : i16x8.shr_u(H, 2);
  return v128.or(nib, v128.and(top, i8x16.splat(0x30)));
}

/**
 * Q6_K against Q8_K: per block, the exact integer sum(s_g * sum (q - 32) x) (the offset through the
 * bsums), then the scalar twin's float steps, acc += (d * dy) * f32(isum): every build gives the same
 * bits as ref/matmul.ts's dotQ6_K. Each group's quants are decoded once per tile of four tokens.
 */
export function simdMatmulQ6_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 8;
  const wRow = <usize>nb * BYTES_Q6_K, xRow = <usize>nb * BYTES_Q8_K;
  for (let t0 = 0; t0 < nTok; t0 += 4) {
    const nt = min(4, nTok - t0);
    const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
    for (let r = rowStart; r < rowEnd; r++) {
      const wr = w + <usize>r * wRow;
      let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const wb = wr + <usize>b * BYTES_Q6_K, xo = <usize>b * BYTES_Q8_K;
        const zero = i32x4.splat(0);
        let i0 = zero, i1 = zero, i2 = zero, i3 = zero;
        // weight i = 128n + 32p + 16h + l: ql byte 64n + 32(p & 1) + 16h + l, qh byte 128 + 32n + 16h + l
        for (let nh = 0; nh < 4; nh++) {
          const n = nh >> 1, h = nh & 1;
          const ql = wb + (<usize>n << 6) + (<usize>h << 4);
          const La = v128.load(ql), Lb = v128.load(ql + 32), H = v128.load(wb + 128 + (<usize>n << 5) + (<usize>h << 4));
          const q0 = q6Quants(La, H, 0), q1 = q6Quants(Lb, H, 1), q2 = q6Quants(La, H, 2), q3 = q6Quants(Lb, H, 3);
          const sc = wb + 192 + (<usize>n << 3) + <usize>h; // scale of group 8n + 2p + h at sc + 2p
          const s0 = i16x8.splat(<i16>load<i8>(sc)), s1 = i16x8.splat(<i16>load<i8>(sc + 2));
          const s2 = i16x8.splat(<i16>load<i8>(sc + 4)), s3 = i16x8.splat(<i16>load<i8>(sc + 6));
          const xq = xo + 4 + (<usize>n << 7) + (<usize>h << 4);
          i0 = group16(group16(group16(group16(i0, x0 + xq, q0, s0), x0 + xq + 32, q1, s1), x0 + xq + 64, q2, s2), x0 + xq + 96, q3, s3);
          if (nt > 1) i1 = group16(group16(group16(group16(i1, x1 + xq, q0, s0), x1 + xq + 32, q1, s1), x1 + xq + 64, q2, s2), x1 + xq + 96, q3, s3);
          if (nt > 2) i2 = group16(group16(group16(group16(i2, x2 + xq, q0, s0), x2 + xq + 32, q1, s1), x2 + xq + 64, q2, s2), x2 + xq + 96, q3, s3);
          if (nt > 3) i3 = group16(group16(group16(group16(i3, x3 + xq, q0, s0), x3 + xq + 32, q1, s1), x3 + xq + 64, q2, s2), x3 + xq + 96, q3, s3);
        }
        const scv = v128.load(wb + 192);
        const sLo = i16x8.extend_low_i8x16_s(scv), sHi = i16x8.extend_high_i8x16_s(scv);
        const d = loadF16(wb + 208);
        a0 += d * load<f32>(x0 + xo) * <f32>hsumI32(i32x4.sub(i0, i32x4.shl(bsumDot(x0 + xo, sLo, sHi), 5)));
        if (nt > 1) a1 += d * load<f32>(x1 + xo) * <f32>hsumI32(i32x4.sub(i1, i32x4.shl(bsumDot(x1 + xo, sLo, sHi), 5)));
        if (nt > 2) a2 += d * load<f32>(x2 + xo) * <f32>hsumI32(i32x4.sub(i2, i32x4.shl(bsumDot(x2 + xo, sLo, sHi), 5)));
        if (nt > 3) a3 += d * load<f32>(x3 + xo) * <f32>hsumI32(i32x4.sub(i3, i32x4.shl(bsumDot(x3 + xo, sLo, sHi), 5)));
      }
      storeScalarTile(out, rows, r, t0, nt, a0, a1, a2, a3);
    }
  }
}
