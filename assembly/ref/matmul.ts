// Scalar twins of the matrix multiplies: out[t*rows + r] = dot(W row r, x row t) for rows
// [rowStart, rowEnd) and all nTok tokens, one weight type each, with x already in the type's
// activation format. Each dot product multiplies a block's integer quants and applies the block
// scales as llama.cpp's ggml_vec_dot_<type>_<vec_dot_type> does. The twins compute bit for bit what
// their SIMD versions compute: F32 and BF16 in the SIMD kernels' four f32 lanes; F16, Q4_0, Q5_0 and
// Q8_0 in llama.cpp's x86 order (described in simd/matmul.ts), spelled out here lane by lane; Q4_K,
// Q5_K and Q6_K as here (the SIMD kernels reduce each block to the same exact integers, then take these
// float steps). The other quantized types sum block results in one f32 and agree with SIMD within
// rounding.
//
// Q4_0 and Q8_0 weights come packed (formats.ts: groups of PACK_ROWS rows, scales gathered, Q8_0
// quants evens-first); every other type in file layout. A packed row's blocks are still a fixed stride
// apart (one group block), so the per-row dot products below take a scale pointer, a quants pointer
// and that stride.
import {
  PACK_ROWS, PACKED_Q4_0_GROUP, PACKED_Q8_0_GROUP,
  TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0,
  TYPE_Q8_1, TYPE_Q8_K, TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K,
  BYTES_Q4_0, BYTES_Q4_1, BYTES_Q5_0, BYTES_Q5_1, BYTES_Q8_0, BYTES_Q8_1,
  BYTES_Q2_K, BYTES_Q3_K, BYTES_Q4_K, BYTES_Q5_K, BYTES_Q6_K, BYTES_Q8_K, blockBytes, blockSize,
} from '../formats';
import { bf16ToF32, f16ToF32, loadF16 } from '../half';
import { q3kScale, scaleMinK4 } from './kscales';
import { fmaF32 } from './fma';
import { q4PackedPos, q8PackedPos } from './repack';

/** The activation format a weight type's dot product takes (llama.cpp's vec_dot_type). */
export function activationType(type: i32): i32 {
  switch (type) {
    case TYPE_Q4_0: case TYPE_Q5_0: case TYPE_Q8_0: return TYPE_Q8_0;
    case TYPE_Q4_1: case TYPE_Q5_1: return TYPE_Q8_1;
    case TYPE_Q2_K: case TYPE_Q3_K: case TYPE_Q4_K: case TYPE_Q5_K: case TYPE_Q6_K: return TYPE_Q8_K;
  }
  return type; // F32, F16, BF16 multiply like with like
}

/** Generic driver: one row against one token at a time. */
export function refMatmul(type: i32, w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const act = activationType(type);
  const xRow = <usize>(cols / blockSize(act)) * blockBytes(act);
  if (type == TYPE_Q4_0 || type == TYPE_Q8_0) {
    packedMatmul(type, w, x, out, cols, rows, nTok, rowStart, rowEnd, xRow);
    return;
  }
  const wRow = <usize>(cols / blockSize(type)) * blockBytes(type);
  for (let r = rowStart; r < rowEnd; r++) {
    const wr = w + <usize>r * wRow;
    for (let t = 0; t < nTok; t++) {
      store<f32>(out + ((<usize>t * rows + r) << 2), rowDot(type, wr, x + <usize>t * xRow, cols));
    }
  }
}

/** Q4_0x8 / Q8_0x8: row r's block b has its scale at group + b*G + 2*lane, its quants after the scales. */
function packedMatmul(type: i32, w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32, xRow: usize): void {
  const nb = cols >> 5;
  const groupBytes: usize = type == TYPE_Q4_0 ? PACKED_Q4_0_GROUP : PACKED_Q8_0_GROUP;
  // quants of a row: Q4_0 byte j at qs + 32*(j/4) + j%4 (q4PackedPos), Q8_0 at qs + q8PackedPos(j)
  // llama.cpp repacks Q4_0 matrices with a multiple of 8 rows and sums each of their outputs in one lane
  const oneLane = type == TYPE_Q4_0 && rows % 8 == 0;
  for (let r = rowStart; r < rowEnd; r++) {
    const g = w + <usize>(r / PACK_ROWS) * nb * groupBytes;
    for (let t = 0; t < nTok; t++) {
      store<f32>(out + ((<usize>t * rows + r) << 2), refPackedDot(type, g, r & (PACK_ROWS - 1), x + <usize>t * xRow, nb, oneLane));
    }
  }
}

/** One output of a packed Q4_0x8 / Q8_0x8 matrix: lane `lane` of the group at g against the token row x. */
function refPackedDot(type: i32, g: usize, lane: i32, x: usize, nb: i32, oneLane: bool): f32 {
  const kind = type == TYPE_Q4_0 ? KIND_Q4_0 : KIND_Q8_0;
  const groupBytes: usize = type == TYPE_Q4_0 ? PACKED_Q4_0_GROUP : PACKED_Q8_0_GROUP;
  const qs = g + 16 + (type == TYPE_Q4_0 ? <usize>q4PackedPos(lane, 0) : <usize>lane << 5);
  return dotX86(kind, g + (<usize>lane << 1), qs, groupBytes, x, nb, oneLane);
}

function rowDot(type: i32, w: usize, x: usize, n: i32): f32 {
  switch (type) {
    case TYPE_F32: return dotF32(w, x, n);
    case TYPE_F16: return dotF16(w, x, n);
    case TYPE_BF16: return dotBF16(w, x, n);
    case TYPE_Q4_1: return dotQ4_1(w, x, n >> 5);
    case TYPE_Q5_0: return dotX86(KIND_Q5_0, w, w + 6, BYTES_Q5_0, x, n >> 5, false);
    case TYPE_Q5_1: return dotQ5_1(w, x, n >> 5);
    case TYPE_Q2_K: return dotQ2_K(w, x, n >> 8);
    case TYPE_Q3_K: return dotQ3_K(w, x, n >> 8);
    case TYPE_Q4_K: return dotQ4_K(w, x, n >> 8);
    case TYPE_Q5_K: return dotQ5_K(w, x, n >> 8);
    case TYPE_Q6_K: return dotQ6_K(w, x, n >> 8);
  }
  return 0;
}

// ---- F32, BF16: four f32 lanes (lane j takes elements i = j mod 4), the tail added to lane 0, then
// (l0 + l1) + (l2 + l3), as simd/matmul.ts ----

function dotF32(w: usize, x: usize, n: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const wi = w + (<usize>i << 2), xi = x + (<usize>i << 2);
    l0 += load<f32>(wi) * load<f32>(xi);
    l1 += load<f32>(wi + 4) * load<f32>(xi + 4);
    l2 += load<f32>(wi + 8) * load<f32>(xi + 8);
    l3 += load<f32>(wi + 12) * load<f32>(xi + 12);
  }
  for (let i = n4; i < n; i++) l0 += load<f32>(w + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
  return (l0 + l1) + (l2 + l3);
}

// @ts-ignore: decorator
@inline function bf16At(p: usize, i: i32): f32 {
  return bf16ToF32(load<u16>(p + (<usize>i << 1)));
}

/** Eight elements at a time: lane j gets (p[i+j] + p[i+4+j]). Products of bf16 values are exact in f32. */
function dotBF16(w: usize, x: usize, n: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const n8 = n & ~7;
  for (let i = 0; i < n8; i += 8) {
    l0 += bf16At(w, i) * bf16At(x, i) + bf16At(w, i + 4) * bf16At(x, i + 4);
    l1 += bf16At(w, i + 1) * bf16At(x, i + 1) + bf16At(w, i + 5) * bf16At(x, i + 5);
    l2 += bf16At(w, i + 2) * bf16At(x, i + 2) + bf16At(w, i + 6) * bf16At(x, i + 6);
    l3 += bf16At(w, i + 3) * bf16At(x, i + 3) + bf16At(w, i + 7) * bf16At(x, i + 7);
  }
  for (let i = n8; i < n; i++) l0 += bf16At(w, i) * bf16At(x, i);
  return (l0 + l1) + (l2 + l3);
}

// ---- F16: ggml_vec_dot_f16 on AVX-512 ----

// @ts-ignore: decorator
@inline function f16At(p: usize, i: i32): f32 {
  return f16ToF32(load<u16>(p + (<usize>i << 1)));
}

/** Lane L (0..63) of the 64-lane accumulator: products L, L+64, L+128, .. of the whole chunks, in order. */
function laneF16(w: usize, x: usize, nChunks: i32, lane: i32): f32 {
  let a: f32 = 0;
  for (let c = 0; c < nChunks; c++) a += f16At(w, (c << 6) + lane) * f16At(x, (c << 6) + lane);
  return a;
}

/** Lane l (0..15) of the first 16-wide accumulator after the folds 0+2, 1+3, 0+1. */
function foldedF16(w: usize, x: usize, nChunks: i32, l: i32): f32 {
  return (laneF16(w, x, nChunks, l) + laneF16(w, x, nChunks, l + 32)) + (laneF16(w, x, nChunks, l + 16) + laneF16(w, x, nChunks, l + 48));
}

/** Lane i (0..3) of _mm512_reduce_add_ps after its halvings 16 -> 8 -> 4 lanes. */
function reducedF16(w: usize, x: usize, nChunks: i32, i: i32): f32 {
  return (foldedF16(w, x, nChunks, i) + foldedF16(w, x, nChunks, i + 8)) + (foldedF16(w, x, nChunks, i + 4) + foldedF16(w, x, nChunks, i + 12));
}

/** Whole 64-element chunks in 64 f32 lanes, reduced as AVX-512 does; the rest added one by one in f64. */
function dotF16(w: usize, x: usize, n: i32): f32 {
  const nChunks = n >> 6;
  const r = (reducedF16(w, x, nChunks, 0) + reducedF16(w, x, nChunks, 2)) + (reducedF16(w, x, nChunks, 1) + reducedF16(w, x, nChunks, 3));
  let s = <f64>r;
  for (let i = nChunks << 6; i < n; i++) s += <f64>(f16At(w, i) * f16At(x, i));
  return <f32>s;
}

// ---- Q4_0, Q5_0, Q8_0: ggml_vec_dot_<type>_q8_0 with AVX2 (eight lanes, lane i = weights 4i..4i+3 of
// each block, one fused multiply-add per block) or, for a repacked Q4_0 matrix, one lane ----

const KIND_Q4_0 = 0;
const KIND_Q5_0 = 1;
const KIND_Q8_0 = 2;

/**
 * Signed weight j (0..31) of a block whose quants start at qs: packed Q4_0 (quant byte k at qs +
 * 32*(k/4) + k%4, nibbles as in the file), Q5_0 in file layout (qh just before qs), packed Q8_0 (each
 * half evens first).
 */
// @ts-ignore: decorator
@inline function weightAt(kind: i32, qs: usize, j: i32): i32 {
  if (kind == KIND_Q8_0) return <i32>load<i8>(qs + q8PackedPos(j));
  const k = j & 15;
  const byte = <i32>load<u8>(qs + (kind == KIND_Q4_0 ? ((k >> 2) << 5) + (k & 3) : k));
  const nibble = j < 16 ? byte & 15 : byte >> 4;
  if (kind == KIND_Q4_0) return nibble - 8;
  return (nibble | ((<i32>(load<u32>(qs - 4) >> j) & 1) << 4)) - 16;
}

/** Exact integer sum of weight * activation over j = first..first+count-1 of one block. */
function blockSum(kind: i32, qs: usize, xb: usize, first: i32, count: i32): i32 {
  let s = 0;
  for (let j = first; j < first + count; j++) s += weightAt(kind, qs, j) * <i32>load<i8>(xb + 2 + j);
  return s;
}


/** One output: block b's scale at dp + b*stride, its quants at qp + b*stride. */
function dotX86(kind: i32, dp: usize, qp: usize, stride: usize, x: usize, nb: i32, oneLane: bool): f32 {
  if (oneLane) {
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const o = <usize>b * stride, xb = x + <usize>b * BYTES_Q8_0;
      acc = fmaF32(<f32>blockSum(kind, qp + o, xb, 0, 32), loadF16(dp + o) * loadF16(xb), acc);
    }
    return acc;
  }
  let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0, a4: f32 = 0, a5: f32 = 0, a6: f32 = 0, a7: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const o = <usize>b * stride, xb = x + <usize>b * BYTES_Q8_0;
    const q = qp + o;
    const d = loadF16(dp + o) * loadF16(xb);
    a0 = fmaF32(<f32>blockSum(kind, q, xb, 0, 4), d, a0);
    a1 = fmaF32(<f32>blockSum(kind, q, xb, 4, 4), d, a1);
    a2 = fmaF32(<f32>blockSum(kind, q, xb, 8, 4), d, a2);
    a3 = fmaF32(<f32>blockSum(kind, q, xb, 12, 4), d, a3);
    a4 = fmaF32(<f32>blockSum(kind, q, xb, 16, 4), d, a4);
    a5 = fmaF32(<f32>blockSum(kind, q, xb, 20, 4), d, a5);
    a6 = fmaF32(<f32>blockSum(kind, q, xb, 24, 4), d, a6);
    a7 = fmaF32(<f32>blockSum(kind, q, xb, 28, 4), d, a7);
  }
  // hsum_float_8: lanes i + (i + 4), then (0 + 2) + (1 + 3)
  return ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7));
}

function dotQ4_1(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q4_1, xb = x + b * BYTES_Q8_1;
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const q = <i32>load<u8>(wb + 4 + j);
      isum += (q & 15) * <i32>load<i8>(xb + 4 + j) + (q >> 4) * <i32>load<i8>(xb + 20 + j);
    }
    sum += loadF16(wb) * loadF16(xb) * f32(isum) + loadF16(wb + 2) * loadF16(xb + 2);
  }
  return sum;
}

function dotQ5_1(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q5_1, xb = x + b * BYTES_Q8_1;
    const qh = load<u32>(wb + 4);
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const q = <i32>load<u8>(wb + 8 + j);
      const q0 = (q & 15) | ((<i32>(qh >> j) & 1) << 4);
      const q1 = (q >> 4) | ((<i32>(qh >> (j + 16)) & 1) << 4);
      isum += q0 * <i32>load<i8>(xb + 4 + j) + q1 * <i32>load<i8>(xb + 20 + j);
    }
    sum += loadF16(wb) * loadF16(xb) * f32(isum) + loadF16(wb + 2) * loadF16(xb + 2);
  }
  return sum;
}

// Q8_K activation block: d f32 at 0, qs[256] at 4, bsums[16] (i16) at 260.
// @ts-ignore: decorator
@inline function q8k(xb: usize, i: i32): i32 {
  return <i32>load<i8>(xb + 4 + i);
}
// @ts-ignore: decorator
@inline function bsum(xb: usize, g: i32): i32 {
  return <i32>load<i16>(xb + 260 + (g << 1));
}

function dotQ2_K(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q2_K, xb = x + b * BYTES_Q8_K;
    let isum = 0, msum = 0;
    for (let g = 0; g < 16; g++) {
      const sc = <i32>load<u8>(wb + g);
      msum += bsum(xb, g) * (sc >> 4);
      let gsum = 0;
      for (let i = g << 4; i < (g << 4) + 16; i++) {
        const q = (<i32>load<u8>(wb + 16 + ((i >> 7) << 5) + (i & 31)) >> (((i >> 5) & 3) << 1)) & 3;
        gsum += q * q8k(xb, i);
      }
      isum += (sc & 15) * gsum;
    }
    const dy = load<f32>(xb);
    sum += dy * loadF16(wb + 80) * f32(isum) - dy * loadF16(wb + 82) * f32(msum);
  }
  return sum;
}

function dotQ3_K(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q3_K, xb = x + b * BYTES_Q8_K;
    let isum = 0;
    for (let g = 0; g < 16; g++) {
      let gsum = 0;
      for (let i = g << 4; i < (g << 4) + 16; i++) {
        const n = i >> 7, j = (i >> 5) & 3, l = i & 31;
        const low = (<i32>load<u8>(wb + 32 + (n << 5) + l) >> (j << 1)) & 3;
        const high = (<i32>load<u8>(wb + l) >> ((n << 2) + j)) & 1;
        gsum += (low + (high << 2) - 4) * q8k(xb, i);
      }
      isum += q3kScale(wb + 96, g) * gsum;
    }
    sum += loadF16(wb + 108) * load<f32>(xb) * f32(isum);
  }
  return sum;
}

/** Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scale and min; Q5_K adds a fifth bit from qh. */
function dotQ45_K(w: usize, x: usize, nb: i32, five: bool): f32 {
  const wBytes: i32 = five ? BYTES_Q5_K : BYTES_Q4_K;
  const qsOff: usize = five ? 48 : 16;
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * wBytes, xb = x + b * BYTES_Q8_K;
    let isum = 0, msum = 0;
    for (let sub = 0; sub < 8; sub++) {
      const sm = scaleMinK4(wb + 4, sub);
      msum += (sm >> 8) * (bsum(xb, sub << 1) + bsum(xb, (sub << 1) + 1));
      let ssum = 0;
      for (let l = 0; l < 32; l++) {
        const byte = <i32>load<u8>(wb + qsOff + ((sub >> 1) << 5) + l);
        let q = (sub & 1) ? byte >> 4 : byte & 15;
        if (five) q += ((<i32>load<u8>(wb + 16 + l) >> sub) & 1) << 4;
        ssum += q * q8k(xb, (sub << 5) + l);
      }
      isum += (sm & 63) * ssum;
    }
    const dy = load<f32>(xb);
    sum += dy * loadF16(wb) * f32(isum) - dy * loadF16(wb + 2) * f32(msum);
  }
  return sum;
}

function dotQ4_K(w: usize, x: usize, nb: i32): f32 {
  return dotQ45_K(w, x, nb, false);
}

function dotQ5_K(w: usize, x: usize, nb: i32): f32 {
  return dotQ45_K(w, x, nb, true);
}

function dotQ6_K(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q6_K, xb = x + b * BYTES_Q8_K;
    let isum = 0;
    for (let g = 0; g < 16; g++) {
      let gsum = 0;
      for (let i = g << 4; i < (g << 4) + 16; i++) {
        const n = i >> 7, part = (i >> 5) & 3, l = i & 31;
        const qlByte = <i32>load<u8>(wb + (n << 6) + ((part & 1) << 5) + l);
        const low = part < 2 ? qlByte & 15 : qlByte >> 4;
        const high = (<i32>load<u8>(wb + 128 + (n << 5) + l) >> (part << 1)) & 3;
        gsum += ((low | (high << 4)) - 32) * q8k(xb, i);
      }
      isum += <i32>load<i8>(wb + 192 + g) * gsum;
    }
    sum += loadF16(wb + 208) * load<f32>(xb) * f32(isum);
  }
  return sum;
}
