// Scalar dequantization of one row of any supported type to f32 (llama.cpp's dequantize_row_*), used
// for embedding lookups and tests. Block layouts: src/quant/formats.ts.
import {
  TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0, TYPE_Q8_1,
  TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K, TYPE_Q8_K,
  BYTES_Q4_0, BYTES_Q4_1, BYTES_Q5_0, BYTES_Q5_1, BYTES_Q8_0, BYTES_Q8_1,
  BYTES_Q2_K, BYTES_Q3_K, BYTES_Q4_K, BYTES_Q5_K, BYTES_Q6_K, BYTES_Q8_K, QK_K,
} from '../formats';
import { bf16ToF32, f16ToF32, loadF16 } from '../half';
import { q3kScale, scaleMinK4 } from './kscales';

/** Writes n f32 values of the row at `src` to `dst`; 0, or -1 when the type is unknown. */
export function refDequantizeRow(type: i32, src: usize, dst: usize, n: i32): i32 {
  switch (type) {
    case TYPE_F32: memory.copy(dst, src, <usize>n << 2); return 0;
    case TYPE_F16:
      for (let i = 0; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(load<u16>(src + (<usize>i << 1))));
      return 0;
    case TYPE_BF16:
      for (let i = 0; i < n; i++) store<f32>(dst + (<usize>i << 2), bf16ToF32(load<u16>(src + (<usize>i << 1))));
      return 0;
    case TYPE_Q4_0: for (let b = 0; b < n >> 5; b++) dequantQ4_0(src + b * BYTES_Q4_0, dst + (b << 7)); return 0;
    case TYPE_Q4_1: for (let b = 0; b < n >> 5; b++) dequantQ4_1(src + b * BYTES_Q4_1, dst + (b << 7)); return 0;
    case TYPE_Q5_0: for (let b = 0; b < n >> 5; b++) dequantQ5(src + b * BYTES_Q5_0, dst + (b << 7), false); return 0;
    case TYPE_Q5_1: for (let b = 0; b < n >> 5; b++) dequantQ5(src + b * BYTES_Q5_1, dst + (b << 7), true); return 0;
    case TYPE_Q8_0: for (let b = 0; b < n >> 5; b++) dequantQ8(src + b * BYTES_Q8_0, dst + (b << 7), 2); return 0;
    case TYPE_Q8_1: for (let b = 0; b < n >> 5; b++) dequantQ8(src + b * BYTES_Q8_1, dst + (b << 7), 4); return 0;
    case TYPE_Q2_K: for (let b = 0; b < n / QK_K; b++) dequantQ2_K(src + b * BYTES_Q2_K, dst + (b << 10)); return 0;
    case TYPE_Q3_K: for (let b = 0; b < n / QK_K; b++) dequantQ3_K(src + b * BYTES_Q3_K, dst + (b << 10)); return 0;
    case TYPE_Q4_K: for (let b = 0; b < n / QK_K; b++) dequantQ4_K(src + b * BYTES_Q4_K, dst + (b << 10)); return 0;
    case TYPE_Q5_K: for (let b = 0; b < n / QK_K; b++) dequantQ5_K(src + b * BYTES_Q5_K, dst + (b << 10)); return 0;
    case TYPE_Q6_K: for (let b = 0; b < n / QK_K; b++) dequantQ6_K(src + b * BYTES_Q6_K, dst + (b << 10)); return 0;
    case TYPE_Q8_K: for (let b = 0; b < n / QK_K; b++) dequantQ8_K(src + b * BYTES_Q8_K, dst + (b << 10)); return 0;
  }
  return -1;
}

// @ts-ignore: decorator
@inline function put(y: usize, i: i32, v: f32): void {
  store<f32>(y + (<usize>i << 2), v);
}

function dequantQ4_0(x: usize, y: usize): void {
  const d = loadF16(x);
  for (let j = 0; j < 16; j++) {
    const q = <i32>load<u8>(x + 2 + j);
    put(y, j, f32((q & 15) - 8) * d);
    put(y, j + 16, f32((q >> 4) - 8) * d);
  }
}

function dequantQ4_1(x: usize, y: usize): void {
  const d = loadF16(x);
  const m = loadF16(x + 2);
  for (let j = 0; j < 16; j++) {
    const q = <i32>load<u8>(x + 4 + j);
    put(y, j, f32(q & 15) * d + m);
    put(y, j + 16, f32(q >> 4) * d + m);
  }
}

/** Q5_0 (value d*(q-16)) and Q5_1 (value d*q + m, with an f16 m before qh). */
function dequantQ5(x: usize, y: usize, withMin: bool): void {
  const d = loadF16(x);
  const hOff: usize = withMin ? 4 : 2;
  const qh = load<u32>(x + hOff);
  const qs = x + hOff + 4;
  for (let j = 0; j < 16; j++) {
    const q = <i32>load<u8>(qs + j);
    const q0 = (q & 15) | ((<i32>(qh >> j) & 1) << 4);
    const q1 = (q >> 4) | ((<i32>(qh >> (j + 16)) & 1) << 4);
    if (withMin) {
      const m = loadF16(x + 2);
      put(y, j, f32(q0) * d + m);
      put(y, j + 16, f32(q1) * d + m);
    } else {
      put(y, j, f32(q0 - 16) * d);
      put(y, j + 16, f32(q1 - 16) * d);
    }
  }
}

/** Q8_0 (quants at 2) and Q8_1 (quants at 4, after d and s): value d * q. */
function dequantQ8(x: usize, y: usize, qOff: usize): void {
  const d = loadF16(x);
  for (let j = 0; j < 32; j++) put(y, j, f32(load<i8>(x + qOff + j)) * d);
}

function dequantQ2_K(x: usize, y: usize): void {
  const d = loadF16(x + 80);
  const dmin = loadF16(x + 82);
  for (let i = 0; i < 256; i++) {
    const n = i >> 7, j = (i >> 5) & 3, l = i & 31;
    const sc = <i32>load<u8>(x + (i >> 4));
    const q = (<i32>load<u8>(x + 16 + (n << 5) + l) >> (j << 1)) & 3;
    put(y, i, d * f32(sc & 15) * f32(q) - dmin * f32(sc >> 4));
  }
}

function dequantQ3_K(x: usize, y: usize): void {
  const d = loadF16(x + 108);
  for (let i = 0; i < 256; i++) {
    const n = i >> 7, j = (i >> 5) & 3, l = i & 31;
    const low = (<i32>load<u8>(x + 32 + (n << 5) + l) >> (j << 1)) & 3;
    const high = (<i32>load<u8>(x + l) >> ((n << 2) + j)) & 1;
    const dl = d * f32(q3kScale(x + 96, i >> 4));
    put(y, i, dl * f32(low + (high << 2) - 4));
  }
}

function dequantQ4_K(x: usize, y: usize): void {
  const d = loadF16(x);
  const dmin = loadF16(x + 2);
  for (let i = 0; i < 256; i++) {
    const sub = i >> 5; // 32-weight sub-block: even ones take low nibbles, odd ones high nibbles
    const byte = <i32>load<u8>(x + 16 + ((sub >> 1) << 5) + (i & 31));
    const q = (sub & 1) ? byte >> 4 : byte & 15;
    const sm = scaleMinK4(x + 4, sub);
    put(y, i, d * f32(sm & 63) * f32(q) - dmin * f32(sm >> 8));
  }
}

function dequantQ5_K(x: usize, y: usize): void {
  const d = loadF16(x);
  const dmin = loadF16(x + 2);
  for (let i = 0; i < 256; i++) {
    const sub = i >> 5;
    const byte = <i32>load<u8>(x + 48 + ((sub >> 1) << 5) + (i & 31));
    const high = (<i32>load<u8>(x + 16 + (i & 31)) >> sub) & 1;
    const q = ((sub & 1) ? byte >> 4 : byte & 15) + (high << 4);
    const sm = scaleMinK4(x + 4, sub);
    put(y, i, d * f32(sm & 63) * f32(q) - dmin * f32(sm >> 8));
  }
}

function dequantQ6_K(x: usize, y: usize): void {
  const d = loadF16(x + 208);
  for (let i = 0; i < 256; i++) {
    const n = i >> 7, part = (i >> 5) & 3, l = i & 31;
    // Parts 0 and 1 take low nibbles of ql[0..31] and ql[32..63], parts 2 and 3 their high nibbles;
    // qh[l] holds the two high bits of all four parts.
    const qlByte = <i32>load<u8>(x + (n << 6) + ((part & 1) << 5) + l);
    const low = part < 2 ? qlByte & 15 : qlByte >> 4;
    const high = (<i32>load<u8>(x + 128 + (n << 5) + l) >> (part << 1)) & 3;
    const sc = <i32>load<i8>(x + 192 + (i >> 4));
    put(y, i, d * f32(sc) * f32((low | (high << 4)) - 32));
  }
}

function dequantQ8_K(x: usize, y: usize): void {
  const d = load<f32>(x);
  for (let i = 0; i < 256; i++) put(y, i, d * f32(load<i8>(x + 4 + i)));
}
