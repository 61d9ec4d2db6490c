// Scalar twin of the packed float matmuls (F32x8, F16x8, BF16x8; simd/matmul-packed-float.ts):
// out[t*rows + r] = dot(W row r, x row t) for rows [rowStart, rowEnd) and all nTok tokens, the weights
// in their packed layout, x in the weight type's activation format (f32, f16, bf16 rows). Each output
// takes exactly the float steps of the file-layout twin in ref/matmul.ts (F32 and BF16: four f32 lanes,
// lane j taking elements i = j mod 4, the tail into lane 0, then (l0 + l1) + (l2 + l3); F16: the 64
// lanes of ggml_vec_dot_f16 on AVX-512 and its reduction, then the tail in f64), only the address of
// weight i of a row changes (repack-float.ts, floatPackedPos and f16PackedPos), so the bits are the same.
import { PACK_ROWS, TYPE_BF16, TYPE_F16 } from '../formats';
import { bf16ToF32, f16ToF32 } from '../half';
import { f16PackedPos, floatPackedPos, floatWeightBytes } from './repack-float';

/** The packed float matmul, one output at a time. */
export function refMatmulPackedFloat(type: i32, w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const e = floatWeightBytes(type);
  const xRow = <usize>cols * e;
  const groupBytes = <usize>PACK_ROWS * cols * e;
  for (let r = rowStart; r < rowEnd; r++) {
    const g = w + <usize>(r / PACK_ROWS) * groupBytes;
    const lane = r & (PACK_ROWS - 1);
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>t * xRow;
      const v = type == TYPE_F16 ? dotF16(g, lane, xt, cols) : type == TYPE_BF16 ? dotBF16(g, lane, xt, cols) : dotF32(g, lane, xt, cols);
      store<f32>(out + ((<usize>t * rows + r) << 2), v);
    }
  }
}

// @ts-ignore: decorator
@inline function wF32(g: usize, lane: i32, i: i32, cols: i32): f32 {
  return load<f32>(g + (<usize>floatPackedPos(lane, i, cols) << 2));
}
// @ts-ignore: decorator
@inline function wBF16(g: usize, lane: i32, i: i32, cols: i32): f32 {
  return bf16ToF32(load<u16>(g + (<usize>floatPackedPos(lane, i, cols) << 1)));
}
// @ts-ignore: decorator
@inline function wF16(g: usize, lane: i32, i: i32, cols: i32): f32 {
  return f16ToF32(load<u16>(g + (<usize>f16PackedPos(lane, i, cols) << 1)));
}
// @ts-ignore: decorator
@inline function xF32(x: usize, i: i32): f32 {
  return load<f32>(x + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline function xBF16(x: usize, i: i32): f32 {
  return bf16ToF32(load<u16>(x + (<usize>i << 1)));
}
// @ts-ignore: decorator
@inline function xF16(x: usize, i: i32): f32 {
  return f16ToF32(load<u16>(x + (<usize>i << 1)));
}

function dotF32(g: usize, lane: i32, x: usize, n: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const q = g + (<usize>((i << 3) + (lane << 2)) << 2); // whole quad i/4: this lane's four weights
    l0 += load<f32>(q) * xF32(x, i);
    l1 += load<f32>(q + 4) * xF32(x, i + 1);
    l2 += load<f32>(q + 8) * xF32(x, i + 2);
    l3 += load<f32>(q + 12) * xF32(x, i + 3);
  }
  for (let i = n4; i < n; i++) l0 += wF32(g, lane, i, n) * xF32(x, i);
  return (l0 + l1) + (l2 + l3);
}

/** Eight elements at a time: lane j gets (p[i+j] + p[i+4+j]). Products of bf16 values are exact in f32. */
function dotBF16(g: usize, lane: i32, x: usize, n: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const n8 = n & ~7;
  for (let i = 0; i < n8; i += 8) {
    const q = g + (<usize>((i << 3) + (lane << 2)) << 1), r = q + 64; // whole quads i/4 and i/4 + 1
    l0 += bf16ToF32(load<u16>(q)) * xBF16(x, i) + bf16ToF32(load<u16>(r)) * xBF16(x, i + 4);
    l1 += bf16ToF32(load<u16>(q + 2)) * xBF16(x, i + 1) + bf16ToF32(load<u16>(r + 2)) * xBF16(x, i + 5);
    l2 += bf16ToF32(load<u16>(q + 4)) * xBF16(x, i + 2) + bf16ToF32(load<u16>(r + 4)) * xBF16(x, i + 6);
    l3 += bf16ToF32(load<u16>(q + 6)) * xBF16(x, i + 3) + bf16ToF32(load<u16>(r + 6)) * xBF16(x, i + 7);
  }
  for (let i = n8; i < n; i++) l0 += wBF16(g, lane, i, n) * xBF16(x, i);
  return (l0 + l1) + (l2 + l3);
}

/** Lane L (0..63) of ggml_vec_dot_f16's 64-lane accumulator: products L, L+64, .. of the whole chunks. */
function laneF16(g: usize, lane: i32, x: usize, n: i32, nChunks: i32, L: i32): f32 {
  let a: f32 = 0;
  // weight 64c + L of this lane: quad slot (L / 4) * nChunks + c, so 64 bytes on per chunk
  const p = g + (<usize>f16PackedPos(lane, L, n) << 1);
  for (let c = 0; c < nChunks; c++) a += f16ToF32(load<u16>(p + (<usize>c << 6))) * xF16(x, (c << 6) + L);
  return a;
}

/** Lane l (0..15) of the first 16-wide accumulator after the folds 0+2, 1+3, 0+1. */
function foldedF16(g: usize, lane: i32, x: usize, n: i32, nChunks: i32, l: i32): f32 {
  return (laneF16(g, lane, x, n, nChunks, l) + laneF16(g, lane, x, n, nChunks, l + 32))
    + (laneF16(g, lane, x, n, nChunks, l + 16) + laneF16(g, lane, x, n, nChunks, l + 48));
}

/** Lane i (0..3) of _mm512_reduce_add_ps after its halvings 16 -> 8 -> 4 lanes. */
function reducedF16(g: usize, lane: i32, x: usize, n: i32, nChunks: i32, i: i32): f32 {
  return (foldedF16(g, lane, x, n, nChunks, i) + foldedF16(g, lane, x, n, nChunks, i + 8))
    + (foldedF16(g, lane, x, n, nChunks, i + 4) + foldedF16(g, lane, x, n, nChunks, i + 12));
}

/** Whole 64-element chunks in 64 f32 lanes, reduced as AVX-512 does; the rest added one by one in f64. */
function dotF16(g: usize, lane: i32, x: usize, n: i32): f32 {
  const nChunks = n >> 6;
  const r = (reducedF16(g, lane, x, n, nChunks, 0) + reducedF16(g, lane, x, n, nChunks, 2))
    + (reducedF16(g, lane, x, n, nChunks, 1) + reducedF16(g, lane, x, n, nChunks, 3));
  let s = <f64>r;
  for (let i = nChunks << 6; i < n; i++) s += <f64>(wF16(g, lane, i, n) * xF16(x, i));
  return <f32>s;
}
