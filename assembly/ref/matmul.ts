// Scalar twins of the matrix multiplies: out[t*rows + r] = dot(W row r, x row t) for rows
// [rowStart, rowEnd) and all nTok tokens, one weight type each, with x already in the type's
// activation format. Each dot product follows llama.cpp's ggml_vec_dot_<type>_<vec_dot_type> (the
// integer dot of a block's quants times the block scales), so the SIMD kernels can be checked
// against plain loops that are easy to read.
import {
  TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0,
  TYPE_Q8_1, TYPE_Q8_K, TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K,
  BYTES_Q4_0, BYTES_Q4_1, BYTES_Q5_0, BYTES_Q5_1, BYTES_Q8_0, BYTES_Q8_1,
  BYTES_Q2_K, BYTES_Q3_K, BYTES_Q4_K, BYTES_Q5_K, BYTES_Q6_K, BYTES_Q8_K, blockBytes, blockSize,
} from '../formats';
import { bf16ToF32, f16ToF32, loadF16 } from '../half';
import { q3kScale, scaleMinK4 } from './kscales';

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
  const wRow = <usize>(cols / blockSize(type)) * blockBytes(type);
  const xRow = <usize>(cols / blockSize(act)) * blockBytes(act);
  for (let r = rowStart; r < rowEnd; r++) {
    const wr = w + <usize>r * wRow;
    for (let t = 0; t < nTok; t++) {
      store<f32>(out + ((<usize>t * rows + r) << 2), rowDot(type, wr, x + <usize>t * xRow, cols));
    }
  }
}

function rowDot(type: i32, w: usize, x: usize, n: i32): f32 {
  switch (type) {
    case TYPE_F32: return dotF32(w, x, n);
    case TYPE_F16: return dotF16(w, x, n);
    case TYPE_BF16: return dotBF16(w, x, n);
    case TYPE_Q4_0: return dotQ4_0(w, x, n >> 5);
    case TYPE_Q4_1: return dotQ4_1(w, x, n >> 5);
    case TYPE_Q5_0: return dotQ5_0(w, x, n >> 5);
    case TYPE_Q5_1: return dotQ5_1(w, x, n >> 5);
    case TYPE_Q8_0: return dotQ8_0(w, x, n >> 5);
    case TYPE_Q2_K: return dotQ2_K(w, x, n >> 8);
    case TYPE_Q3_K: return dotQ3_K(w, x, n >> 8);
    case TYPE_Q4_K: return dotQ4_K(w, x, n >> 8);
    case TYPE_Q5_K: return dotQ5_K(w, x, n >> 8);
    case TYPE_Q6_K: return dotQ6_K(w, x, n >> 8);
  }
  return 0;
}

// Float rows accumulate in f64, as ggml's scalar ggml_vec_dot_f32/f16/bf16 do.
function dotF32(w: usize, x: usize, n: i32): f32 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) s += f64(load<f32>(w + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2)));
  return f32(s);
}

function dotF16(w: usize, x: usize, n: i32): f32 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    s += f64(f16ToF32(load<u16>(w + (<usize>i << 1))) * f16ToF32(load<u16>(x + (<usize>i << 1))));
  }
  return f32(s);
}

function dotBF16(w: usize, x: usize, n: i32): f32 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    s += f64(bf16ToF32(load<u16>(w + (<usize>i << 1))) * bf16ToF32(load<u16>(x + (<usize>i << 1))));
  }
  return f32(s);
}

function dotQ4_0(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q4_0, xb = x + b * BYTES_Q8_0;
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const q = <i32>load<u8>(wb + 2 + j);
      isum += ((q & 15) - 8) * <i32>load<i8>(xb + 2 + j) + ((q >> 4) - 8) * <i32>load<i8>(xb + 18 + j);
    }
    sum += f32(isum) * loadF16(wb) * loadF16(xb);
  }
  return sum;
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

function dotQ5_0(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q5_0, xb = x + b * BYTES_Q8_0;
    const qh = load<u32>(wb + 2);
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const q = <i32>load<u8>(wb + 6 + j);
      const q0 = ((q & 15) | ((<i32>(qh >> j) & 1) << 4)) - 16;
      const q1 = ((q >> 4) | ((<i32>(qh >> (j + 16)) & 1) << 4)) - 16;
      isum += q0 * <i32>load<i8>(xb + 2 + j) + q1 * <i32>load<i8>(xb + 18 + j);
    }
    sum += f32(isum) * loadF16(wb) * loadF16(xb);
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

function dotQ8_0(w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + b * BYTES_Q8_0, xb = x + b * BYTES_Q8_0;
    let isum = 0;
    for (let j = 0; j < 32; j++) isum += <i32>load<i8>(wb + 2 + j) * <i32>load<i8>(xb + 2 + j);
    sum += f32(isum) * loadF16(wb) * loadF16(xb);
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
