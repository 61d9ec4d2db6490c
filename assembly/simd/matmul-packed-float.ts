// SIMD128 matrix multiplies over the packed float layouts F32x8, F16x8 and BF16x8 (formats.ts), same
// signature and same bits as their scalar twin (ref/matmul-packed-float.ts) and as the file-layout
// kernels of simd/matmul.ts: out[t*rows + r] = dot(W row r, x row t), x in the weight type's activation
// format (f32, f16 or bf16 rows), rows [rowStart, rowEnd) (any range; multiples of PACK_ROWS avoid
// computing a group twice).
//
// The unit of work is half a group (4 rows) against two tokens: per quad of columns, the 4 rows'
// weights come in one vector each (F32) or two rows to a vector (F16, BF16), are converted once and
// meet both tokens' activations, and each token's activation quad is converted once for the 4 rows.
// Eight f32x4 accumulators, so nothing spills in the inner loop. Prefill runs every token pair over
// one half group while its weights (4 rows) sit in cache, so the weights stream from memory once per
// matmul. Every output keeps the float order of its file-layout kernel: F32 and BF16 four lanes
// (lane j = column mod 4, BF16 adding the pair of quads of each 8 columns before the accumulator, the
// tail into lane 0), F16 the 64 lanes of ggml_vec_dot_f16, visited one lane group at a time in the
// order of simd/matmul.ts, then the same folds and f64 tail (F16x8 stores each lane group of all the
// chunks as one run, so each of the 16 passes reads contiguous memory).
//
// F16 to f32, eight halves at a time, in five integer steps and one multiply: the bits sign |
// (h & 0x7fff) << 13 are the half's value times 2^-112 (two shifts, a mask and two interleaves build
// them), and a multiply by 2^112 makes that exact for every finite half, subnormal ones included.
// That is a third of the file kernel's conversion (lanes.ts, halfLanesToF32), which it also did once
// per row for the activations. The price: a subnormal half is an f32 subnormal before the multiply,
// which costs x86 a microcode assist; those are a few in ten thousand of a real model's weights.
// Infinities and NaN would come out finite, so F16 matrices holding one are refused at repack time
// (ref/repack-float.ts) and activations holding one take the exact general conversion for the call.
import { PACK_ROWS } from '../formats';
import { bf16ToF32, f16ToF32 } from '../half';
import { f16PackedPos, floatPackedPos } from '../ref/repack-float';
import { halfLanesToF32, hsumF32, hsumX86 } from './lanes';

// ---- shared pieces ----

/** Stores four rows' results of one token (rows r0..r0+3) where they fall inside [rowStart, rowEnd). */
// @ts-ignore: decorator
@inline function store4(o: usize, r0: i32, rowStart: i32, rowEnd: i32, v0: f32, v1: f32, v2: f32, v3: f32): void {
  if (r0 >= rowStart && r0 < rowEnd) store<f32>(o + (<usize>r0 << 2), v0);
  if (r0 + 1 >= rowStart && r0 + 1 < rowEnd) store<f32>(o + (<usize>(r0 + 1) << 2), v1);
  if (r0 + 2 >= rowStart && r0 + 2 < rowEnd) store<f32>(o + (<usize>(r0 + 2) << 2), v2);
  if (r0 + 3 >= rowStart && r0 + 3 < rowEnd) store<f32>(o + (<usize>(r0 + 3) << 2), v3);
}

/** acc with p added to lane 0 only (the tails of F32 and BF16 go to lane 0, as in the file kernels). */
// @ts-ignore: decorator
@inline function addLane0(acc: v128, p: f32): v128 {
  return f32x4.add(acc, f32x4.replace_lane(f32x4.splat(0), 0, p));
}

/** The low four 16-bit lanes of v as the top halves of four u32 lanes (bf16 to f32). */
// @ts-ignore: decorator
@inline function topLow(bot: v128, top: v128): v128 {
  return i8x16.shuffle(bot, top, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}
// @ts-ignore: decorator
@inline function topHigh(bot: v128, top: v128): v128 {
  return i8x16.shuffle(bot, top, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/**
 * The top 16 bits of f32 values whose bits are sign | (h & 0x7fff) << 13: the half's value times
 * 2^-112 (exponent field and mantissa moved into place, not rebiased). The low 16 bits: shl(h, 13).
 */
// @ts-ignore: decorator
@inline function f16Top(h: v128): v128 {
  return v128.and(i16x8.shr_s(h, 3), i16x8.splat(<i16>0x8fff));
}

/**
 * Four finite halves (the low or high four of h) as f32: the value times 2^-112 as above, then one
 * exact multiply by 2^112. Exact for normal, subnormal and zero halves alike (a subnormal half is an
 * f32 subnormal before the multiply and a normal f32 after it); not for infinities and NaN, whose
 * exponent this does not saturate: the callers keep those out (see simdMatmulPackedF16).
 */
// @ts-ignore: decorator
@inline function f16Lo(h: v128): v128 {
  return f32x4.mul(topLow(i16x8.shl(h, 13), f16Top(h)), f32x4.splat(reinterpret<f32>(0x77800000)));
}
// @ts-ignore: decorator
@inline function f16Hi(h: v128): v128 {
  return f32x4.mul(topHigh(i16x8.shl(h, 13), f16Top(h)), f32x4.splat(reinterpret<f32>(0x77800000)));
}
// @ts-ignore: decorator
@inline function f16LoExact(h: v128): v128 {
  return halfLanesToF32(i32x4.extend_low_i16x8_u(h));
}
// @ts-ignore: decorator
@inline function f16HiExact(h: v128): v128 {
  return halfLanesToF32(i32x4.extend_high_i16x8_u(h));
}

/** The activation quads at x0 + o and x1 + o (token 1's in the high half; token 0's twice when nt == 1). */
// @ts-ignore: decorator
@inline function xPair(x0: usize, x1: usize, o: usize, nt: i32): v128 {
  const v = v128.load64_splat(x0 + o);
  return nt > 1 ? i64x2.replace_lane(v, 1, load<i64>(x1 + o)) : v;
}

// ===================== F32x8 =====================

/** F32 weights (packed), f32 activations. */
export function simdMatmulPackedF32(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (rowEnd <= rowStart) return;
  const xRow = <usize>cols << 2;
  const groupBytes = <usize>PACK_ROWS * xRow;
  const n4 = cols & ~3, tw = cols - n4;
  const zero = f32x4.splat(0);
  for (let r0 = (rowStart >> 2) << 2; r0 < rowEnd; r0 += 4) {
    const g = w + <usize>(r0 >> 3) * groupBytes;
    const half = <usize>(r0 & 4) << 4; // rows 4..7 of a quad: 64 bytes in
    for (let t0 = 0; t0 < nTok; t0 += 2) {
      const nt = min(2, nTok - t0);
      const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow;
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (let i = 0; i < n4; i += 4) {
        const q = g + (<usize>i << 5) + half;
        const w0 = v128.load(q), w1 = v128.load(q + 16), w2 = v128.load(q + 32), w3 = v128.load(q + 48);
        const xa = v128.load(x0 + (<usize>i << 2));
        a0 = f32x4.add(a0, f32x4.mul(w0, xa));
        a1 = f32x4.add(a1, f32x4.mul(w1, xa));
        a2 = f32x4.add(a2, f32x4.mul(w2, xa));
        a3 = f32x4.add(a3, f32x4.mul(w3, xa));
        if (nt > 1) {
          const xb = v128.load(x1 + (<usize>i << 2));
          b0 = f32x4.add(b0, f32x4.mul(w0, xb));
          b1 = f32x4.add(b1, f32x4.mul(w1, xb));
          b2 = f32x4.add(b2, f32x4.mul(w2, xb));
          b3 = f32x4.add(b3, f32x4.mul(w3, xb));
        }
      }
      if (tw > 0) {
        // the last quad holds tw weights per row: row j's at n4 * 8 + j * tw
        const q = g + (<usize>n4 << 5) + (<usize>(r0 & 4) * tw << 2);
        for (let i = 0; i < tw; i++) {
          const o = <usize>i << 2;
          const xa = load<f32>(x0 + ((<usize>(n4 + i)) << 2));
          const p0 = load<f32>(q + o), p1 = load<f32>(q + o + (<usize>tw << 2));
          const p2 = load<f32>(q + o + (<usize>tw << 3)), p3 = load<f32>(q + o + <usize>tw * 12);
          a0 = addLane0(a0, p0 * xa); a1 = addLane0(a1, p1 * xa); a2 = addLane0(a2, p2 * xa); a3 = addLane0(a3, p3 * xa);
          if (nt > 1) {
            const xb = load<f32>(x1 + ((<usize>(n4 + i)) << 2));
            b0 = addLane0(b0, p0 * xb); b1 = addLane0(b1, p1 * xb); b2 = addLane0(b2, p2 * xb); b3 = addLane0(b3, p3 * xb);
          }
        }
      }
      const o0 = out + ((<usize>t0 * rows) << 2);
      store4(o0, r0, rowStart, rowEnd, hsumF32(a0), hsumF32(a1), hsumF32(a2), hsumF32(a3));
      if (nt > 1) store4(o0 + (<usize>rows << 2), r0, rowStart, rowEnd, hsumF32(b0), hsumF32(b1), hsumF32(b2), hsumF32(b3));
    }
  }
}

// ===================== BF16x8 =====================

/** Rows 4h..4h+3 of a BF16x8 quad at q: two vectors, two rows each; bf16 to f32 is a 16-bit shift. */
// @ts-ignore: decorator
@inline function bfLo(v: v128): v128 {
  return topLow(i32x4.splat(0), v);
}
// @ts-ignore: decorator
@inline function bfHi(v: v128): v128 {
  return topHigh(i32x4.splat(0), v);
}

/** BF16 weights (packed), bf16 activations; each 8 columns' two products per lane added before the accumulator. */
export function simdMatmulPackedBF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (rowEnd <= rowStart) return;
  const xRow = <usize>cols << 1;
  const groupBytes = <usize>PACK_ROWS * xRow;
  const n8 = cols & ~7;
  const zero = f32x4.splat(0);
  for (let r0 = (rowStart >> 2) << 2; r0 < rowEnd; r0 += 4) {
    const g = w + <usize>(r0 >> 3) * groupBytes;
    const half = <usize>(r0 & 4) << 3; // rows 4..7 of a quad: 32 bytes in
    const lane0 = r0 & 7;
    for (let t0 = 0; t0 < nTok; t0 += 2) {
      const nt = min(2, nTok - t0);
      const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow;
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (let i = 0; i < n8; i += 8) {
        const q = g + (<usize>i << 4) + half; // quad i/4 at 64 * i/4 bytes; quad i/4 + 1 64 bytes on
        const u = v128.load(q), v = v128.load(q + 16), u2 = v128.load(q + 64), v2 = v128.load(q + 80);
        const w0 = bfLo(u), w1 = bfHi(u), w2 = bfLo(v), w3 = bfHi(v);
        const w4 = bfLo(u2), w5 = bfHi(u2), w6 = bfLo(v2), w7 = bfHi(v2);
        const xv = xPair(x0, x1, <usize>i << 1, nt), xw = xPair(x0, x1, (<usize>i << 1) + 8, nt);
        const xa = bfLo(xv), xa2 = bfLo(xw);
        a0 = f32x4.add(a0, f32x4.add(f32x4.mul(w0, xa), f32x4.mul(w4, xa2)));
        a1 = f32x4.add(a1, f32x4.add(f32x4.mul(w1, xa), f32x4.mul(w5, xa2)));
        a2 = f32x4.add(a2, f32x4.add(f32x4.mul(w2, xa), f32x4.mul(w6, xa2)));
        a3 = f32x4.add(a3, f32x4.add(f32x4.mul(w3, xa), f32x4.mul(w7, xa2)));
        if (nt > 1) {
          const xb = bfHi(xv), xb2 = bfHi(xw);
          b0 = f32x4.add(b0, f32x4.add(f32x4.mul(w0, xb), f32x4.mul(w4, xb2)));
          b1 = f32x4.add(b1, f32x4.add(f32x4.mul(w1, xb), f32x4.mul(w5, xb2)));
          b2 = f32x4.add(b2, f32x4.add(f32x4.mul(w2, xb), f32x4.mul(w6, xb2)));
          b3 = f32x4.add(b3, f32x4.add(f32x4.mul(w3, xb), f32x4.mul(w7, xb2)));
        }
      }
      for (let i = n8; i < cols; i++) {
        const xa = bf16ToF32(load<u16>(x0 + (<usize>i << 1)));
        const p0 = bfAt(g, lane0, i, cols), p1 = bfAt(g, lane0 + 1, i, cols), p2 = bfAt(g, lane0 + 2, i, cols), p3 = bfAt(g, lane0 + 3, i, cols);
        a0 = addLane0(a0, p0 * xa); a1 = addLane0(a1, p1 * xa); a2 = addLane0(a2, p2 * xa); a3 = addLane0(a3, p3 * xa);
        if (nt > 1) {
          const xb = bf16ToF32(load<u16>(x1 + (<usize>i << 1)));
          b0 = addLane0(b0, p0 * xb); b1 = addLane0(b1, p1 * xb); b2 = addLane0(b2, p2 * xb); b3 = addLane0(b3, p3 * xb);
        }
      }
      const o0 = out + ((<usize>t0 * rows) << 2);
      store4(o0, r0, rowStart, rowEnd, hsumF32(a0), hsumF32(a1), hsumF32(a2), hsumF32(a3));
      if (nt > 1) store4(o0 + (<usize>rows << 2), r0, rowStart, rowEnd, hsumF32(b0), hsumF32(b1), hsumF32(b2), hsumF32(b3));
    }
  }
}

// @ts-ignore: decorator
@inline function bfAt(g: usize, lane: i32, i: i32, cols: i32): f32 {
  return bf16ToF32(load<u16>(g + (<usize>floatPackedPos(lane, i, cols) << 1)));
}

// @ts-ignore: decorator
@inline function hAt(g: usize, lane: i32, i: i32, cols: i32): f32 {
  return f16ToF32(load<u16>(g + (<usize>f16PackedPos(lane, i, cols) << 1)));
}

// ===================== F16x8 in llama.cpp's x86 order =====================
// Per output, the lane-group sums A_q (q = 0..15, the f32x4 of lanes 4q..4q+3 over all whole chunks)
// are combined exactly as simd/matmul.ts does: P = A_k + A_{k+8}, Q = A_{k+4}, S_k = P + (Q + A_{k+12}),
// U = S_0 + S_2, V = S_1 + S_3, result hsumX86(U + V), then the f64 tail. Pass i (0..15) computes
// A_gq(i) for the unit's 8 outputs and folds it in.

/** Lane group of pass i: S_k built in the order k = 0, 2, 1, 3, each from A_k, A_{k+8}, A_{k+4}, A_{k+12}. */
// @ts-ignore: decorator
@inline function laneGroup(i: i32): i32 {
  const k = ((i >> 1) & 2) | ((i >> 3) & 1);
  return k + ((i & 1) << 3) + ((i & 2) << 1);
}
// @ts-ignore: decorator
@inline function foldP(i: i32, p: v128, a: v128): v128 {
  return (i & 3) == 0 ? a : (i & 3) == 1 ? f32x4.add(p, a) : p;
}
// @ts-ignore: decorator
@inline function foldQ(i: i32, q: v128, a: v128): v128 {
  return (i & 3) == 2 ? a : q;
}
/** U (first = true: S_0 + S_2) or V (S_1 + S_3) after pass i, from the P and Q before it. */
// @ts-ignore: decorator
@inline function foldUV(i: i32, u: v128, p: v128, q: v128, a: v128, first: bool): v128 {
  if ((i & 3) != 3) return u;
  const blk = i >> 2;
  const s = f32x4.add(p, f32x4.add(q, a));
  if (first) return blk == 0 ? s : blk == 1 ? f32x4.add(u, s) : u;
  return blk == 2 ? s : blk == 3 ? f32x4.add(u, s) : u;
}

/** The f64 tail of ggml_vec_dot_f16 for lane `lane` of group g against token row xt. */
// @ts-ignore: decorator
@inline function tailF16(sum: f32, g: usize, lane: i32, xt: usize, n64: i32, cols: i32): f32 {
  let s = <f64>sum;
  for (let i = n64; i < cols; i++) s += <f64>(hAt(g, lane, i, cols) * f16ToF32(load<u16>(xt + (<usize>i << 1))));
  return <f32>s;
}

/** True when any of the n halves at p is infinite or NaN (exponent 31). */
function anyNonFiniteHalf(p: usize, n: i32): bool {
  const n8 = n & ~7;
  let m = i16x8.splat(0);
  for (let i = 0; i < n8; i += 8) {
    const e = v128.and(v128.load(p + (<usize>i << 1)), i16x8.splat(0x7c00));
    m = v128.or(m, i16x8.eq(e, i16x8.splat(0x7c00)));
  }
  if (v128.any_true(m)) return true;
  for (let i = n8; i < n; i++) if ((load<u16>(p + (<usize>i << 1)) & 0x7c00) == 0x7c00) return true;
  return false;
}

/**
 * F16 weights (packed) with f16 activations. The weights are finite (repack-float.ts refuses F16
 * matrices with an infinity or NaN); activations with one (an f32 activation beyond the half range)
 * send the whole call through the exact general conversion.
 */
export function simdMatmulPackedF16(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (rowEnd <= rowStart) return;
  const exact = anyNonFiniteHalf(x, nTok * cols);
  if (nTok == 1) {
    // decode: whole groups against the one token (one activation conversion for 8 rows)
    if (exact) gemvF16x8(w, x, out, cols, rowStart, rowEnd, true);
    else gemvF16x8(w, x, out, cols, rowStart, rowEnd, false);
  } else if (exact) matmulF16x8(w, x, out, cols, rows, nTok, rowStart, rowEnd, true);
  else matmulF16x8(w, x, out, cols, rows, nTok, rowStart, rowEnd, false);
}

/** One token: 8 rows per unit, so each activation quad is converted once for the group's 8 rows. */
// @ts-ignore: decorator
@inline function gemvF16x8(w: usize, x: usize, out: usize, cols: i32, rowStart: i32, rowEnd: i32, exact: bool): void {
  const groupBytes = <usize>PACK_ROWS * (<usize>cols << 1);
  const nChunks = cols >> 6, n64 = nChunks << 6;
  const zero = f32x4.splat(0);
  for (let r0 = (rowStart >> 3) << 3; r0 < rowEnd; r0 += 8) {
    const g = w + <usize>(r0 >> 3) * groupBytes;
    let p0 = zero, p1 = zero, p2 = zero, p3 = zero, p4 = zero, p5 = zero, p6 = zero, p7 = zero;
    let q0 = zero, q1 = zero, q2 = zero, q3 = zero, q4 = zero, q5 = zero, q6 = zero, q7 = zero;
    let u0 = zero, u1 = zero, u2 = zero, u3 = zero, u4 = zero, u5 = zero, u6 = zero, u7 = zero;
    let v0 = zero, v1 = zero, v2 = zero, v3 = zero, v4 = zero, v5 = zero, v6 = zero, v7 = zero;
    for (let i = 0; i < 16; i++) {
      const lg = laneGroup(i);
      const wq = g + ((<usize>lg * nChunks) << 6), xq = x + (<usize>lg << 3);
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
      for (let c = 0; c < nChunks; c++) {
        const wp = wq + (<usize>c << 6);
        const h0 = v128.load(wp), h1 = v128.load(wp + 16), h2 = v128.load(wp + 32), h3 = v128.load(wp + 48);
        const hx = v128.load64_splat(xq + (<usize>c << 7));
        const xa = exact ? f16LoExact(hx) : f16Lo(hx);
        a0 = f32x4.add(a0, f32x4.mul(exact ? f16LoExact(h0) : f16Lo(h0), xa));
        a1 = f32x4.add(a1, f32x4.mul(exact ? f16HiExact(h0) : f16Hi(h0), xa));
        a2 = f32x4.add(a2, f32x4.mul(exact ? f16LoExact(h1) : f16Lo(h1), xa));
        a3 = f32x4.add(a3, f32x4.mul(exact ? f16HiExact(h1) : f16Hi(h1), xa));
        a4 = f32x4.add(a4, f32x4.mul(exact ? f16LoExact(h2) : f16Lo(h2), xa));
        a5 = f32x4.add(a5, f32x4.mul(exact ? f16HiExact(h2) : f16Hi(h2), xa));
        a6 = f32x4.add(a6, f32x4.mul(exact ? f16LoExact(h3) : f16Lo(h3), xa));
        a7 = f32x4.add(a7, f32x4.mul(exact ? f16HiExact(h3) : f16Hi(h3), xa));
      }
      u0 = foldUV(i, u0, p0, q0, a0, true); v0 = foldUV(i, v0, p0, q0, a0, false); p0 = foldP(i, p0, a0); q0 = foldQ(i, q0, a0);
      u1 = foldUV(i, u1, p1, q1, a1, true); v1 = foldUV(i, v1, p1, q1, a1, false); p1 = foldP(i, p1, a1); q1 = foldQ(i, q1, a1);
      u2 = foldUV(i, u2, p2, q2, a2, true); v2 = foldUV(i, v2, p2, q2, a2, false); p2 = foldP(i, p2, a2); q2 = foldQ(i, q2, a2);
      u3 = foldUV(i, u3, p3, q3, a3, true); v3 = foldUV(i, v3, p3, q3, a3, false); p3 = foldP(i, p3, a3); q3 = foldQ(i, q3, a3);
      u4 = foldUV(i, u4, p4, q4, a4, true); v4 = foldUV(i, v4, p4, q4, a4, false); p4 = foldP(i, p4, a4); q4 = foldQ(i, q4, a4);
      u5 = foldUV(i, u5, p5, q5, a5, true); v5 = foldUV(i, v5, p5, q5, a5, false); p5 = foldP(i, p5, a5); q5 = foldQ(i, q5, a5);
      u6 = foldUV(i, u6, p6, q6, a6, true); v6 = foldUV(i, v6, p6, q6, a6, false); p6 = foldP(i, p6, a6); q6 = foldQ(i, q6, a6);
      u7 = foldUV(i, u7, p7, q7, a7, true); v7 = foldUV(i, v7, p7, q7, a7, false); p7 = foldP(i, p7, a7); q7 = foldQ(i, q7, a7);
    }
    store4(out, r0, rowStart, rowEnd,
      tailF16(hsumX86(f32x4.add(u0, v0)), g, 0, x, n64, cols), tailF16(hsumX86(f32x4.add(u1, v1)), g, 1, x, n64, cols),
      tailF16(hsumX86(f32x4.add(u2, v2)), g, 2, x, n64, cols), tailF16(hsumX86(f32x4.add(u3, v3)), g, 3, x, n64, cols));
    store4(out, r0 + 4, rowStart, rowEnd,
      tailF16(hsumX86(f32x4.add(u4, v4)), g, 4, x, n64, cols), tailF16(hsumX86(f32x4.add(u5, v5)), g, 5, x, n64, cols),
      tailF16(hsumX86(f32x4.add(u6, v6)), g, 6, x, n64, cols), tailF16(hsumX86(f32x4.add(u7, v7)), g, 7, x, n64, cols));
  }
}

// @ts-ignore: decorator
@inline function matmulF16x8(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32, exact: bool): void {
  const xRow = <usize>cols << 1;
  const groupBytes = <usize>PACK_ROWS * xRow;
  const nChunks = cols >> 6, n64 = nChunks << 6;
  const zero = f32x4.splat(0);
  for (let r0 = (rowStart >> 2) << 2; r0 < rowEnd; r0 += 4) {
    const g = w + <usize>(r0 >> 3) * groupBytes;
    const half = <usize>(r0 & 4) << 3;
    const lane0 = r0 & 7;
    for (let t0 = 0; t0 < nTok; t0 += 2) {
      const nt = min(2, nTok - t0);
      const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow;
      // P, Q, U, V of the 8 outputs: token 0 rows 0..3 (p0..p3), token 1 (p4..p7)
      let p0 = zero, p1 = zero, p2 = zero, p3 = zero, p4 = zero, p5 = zero, p6 = zero, p7 = zero;
      let q0 = zero, q1 = zero, q2 = zero, q3 = zero, q4 = zero, q5 = zero, q6 = zero, q7 = zero;
      let u0 = zero, u1 = zero, u2 = zero, u3 = zero, u4 = zero, u5 = zero, u6 = zero, u7 = zero;
      let v0 = zero, v1 = zero, v2 = zero, v3 = zero, v4 = zero, v5 = zero, v6 = zero, v7 = zero;
      for (let i = 0; i < 16; i++) {
        const lg = laneGroup(i);
        // lane group lg of chunk c: slot lg * nChunks + c of the group (64 bytes each); the activation
        // quad at 128c + 8lg
        const wq = g + ((<usize>lg * nChunks) << 6) + half, xq = <usize>lg << 3;
        let a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
        for (let c = 0; c < nChunks; c++) {
          const wp = wq + (<usize>c << 6);
          const hu = v128.load(wp), hv = v128.load(wp + 16);
          const hx = xPair(x0, x1, xq + (<usize>c << 7), nt);
          let w0: v128, w1: v128, w2: v128, w3: v128, xa: v128, xb: v128;
          if (exact) {
            w0 = f16LoExact(hu); w1 = f16HiExact(hu); w2 = f16LoExact(hv); w3 = f16HiExact(hv);
            xa = f16LoExact(hx); xb = f16HiExact(hx);
          } else {
            w0 = f16Lo(hu); w1 = f16Hi(hu); w2 = f16Lo(hv); w3 = f16Hi(hv);
            xa = f16Lo(hx); xb = f16Hi(hx);
          }
          a0 = f32x4.add(a0, f32x4.mul(w0, xa));
          a1 = f32x4.add(a1, f32x4.mul(w1, xa));
          a2 = f32x4.add(a2, f32x4.mul(w2, xa));
          a3 = f32x4.add(a3, f32x4.mul(w3, xa));
          if (nt > 1) {
            b0 = f32x4.add(b0, f32x4.mul(w0, xb));
            b1 = f32x4.add(b1, f32x4.mul(w1, xb));
            b2 = f32x4.add(b2, f32x4.mul(w2, xb));
            b3 = f32x4.add(b3, f32x4.mul(w3, xb));
          }
        }
        u0 = foldUV(i, u0, p0, q0, a0, true); v0 = foldUV(i, v0, p0, q0, a0, false); p0 = foldP(i, p0, a0); q0 = foldQ(i, q0, a0);
        u1 = foldUV(i, u1, p1, q1, a1, true); v1 = foldUV(i, v1, p1, q1, a1, false); p1 = foldP(i, p1, a1); q1 = foldQ(i, q1, a1);
        u2 = foldUV(i, u2, p2, q2, a2, true); v2 = foldUV(i, v2, p2, q2, a2, false); p2 = foldP(i, p2, a2); q2 = foldQ(i, q2, a2);
        u3 = foldUV(i, u3, p3, q3, a3, true); v3 = foldUV(i, v3, p3, q3, a3, false); p3 = foldP(i, p3, a3); q3 = foldQ(i, q3, a3);
        if (nt > 1) {
          u4 = foldUV(i, u4, p4, q4, b0, true); v4 = foldUV(i, v4, p4, q4, b0, false); p4 = foldP(i, p4, b0); q4 = foldQ(i, q4, b0);
          u5 = foldUV(i, u5, p5, q5, b1, true); v5 = foldUV(i, v5, p5, q5, b1, false); p5 = foldP(i, p5, b1); q5 = foldQ(i, q5, b1);
          u6 = foldUV(i, u6, p6, q6, b2, true); v6 = foldUV(i, v6, p6, q6, b2, false); p6 = foldP(i, p6, b2); q6 = foldQ(i, q6, b2);
          u7 = foldUV(i, u7, p7, q7, b3, true); v7 = foldUV(i, v7, p7, q7, b3, false); p7 = foldP(i, p7, b3); q7 = foldQ(i, q7, b3);
        }
      }
      const o0 = out + ((<usize>t0 * rows) << 2);
      store4(o0, r0, rowStart, rowEnd,
        tailF16(hsumX86(f32x4.add(u0, v0)), g, lane0, x0, n64, cols), tailF16(hsumX86(f32x4.add(u1, v1)), g, lane0 + 1, x0, n64, cols),
        tailF16(hsumX86(f32x4.add(u2, v2)), g, lane0 + 2, x0, n64, cols), tailF16(hsumX86(f32x4.add(u3, v3)), g, lane0 + 3, x0, n64, cols));
      if (nt > 1) {
        store4(o0 + (<usize>rows << 2), r0, rowStart, rowEnd,
          tailF16(hsumX86(f32x4.add(u4, v4)), g, lane0, x1, n64, cols), tailF16(hsumX86(f32x4.add(u5, v5)), g, lane0 + 1, x1, n64, cols),
          tailF16(hsumX86(f32x4.add(u6, v6)), g, lane0 + 2, x1, n64, cols), tailF16(hsumX86(f32x4.add(u7, v7)), g, lane0 + 3, x1, n64, cols));
      }
    }
  }
}
