// Load-time repacking of Q4_1, Q4_K and Q5_K matrices into their packed layouts Q4_1x8, Q4_Kx8 and
// Q5_Kx8 (formats.ts), the way back for one row (the embedding lookup of a tied embedding matrix),
// and the byte positions that the scalar twin of their matmul reads. Scalar in every build: it runs
// once per weight and only moves bytes (and unpacks the k-quants' 6-bit scales).
import {
  BYTES_Q4_1, BYTES_Q4_K, BYTES_Q5_K, PACK_ROWS, PACKED_Q4_1_GROUP, PACKED_Q4_K_GROUP, PACKED_Q5_K_GROUP,
  TYPE_Q4_1, TYPE_Q4_K, TYPE_Q5_K,
} from '../formats';
import { f16ToF32 } from '../half';
import { scaleMinK4 } from './kscales';

// ---- byte positions inside one group block (lane r = row within the group, 0..7) ----

/** Q4_1x8: quant byte j (0..15) of lane r, after d[8] and m[8]: vector (quad j/4, half r/4). */
// @ts-ignore: decorator
@inline export function q4_1PackedPos(r: i32, j: i32): i32 {
  return 32 + (((j >> 2) << 1) + (r >> 2)) * 16 + ((r & 3) << 2) + (j & 3);
}

/** Q4_Kx8/Q5_Kx8: the unpacked 6-bit scale of sub-block j (0..7) of lane r. */
// @ts-ignore: decorator
@inline export function kScalePos(r: i32, j: i32): i32 {
  return 32 + (j << 3) + r;
}

/** Q4_Kx8/Q5_Kx8: the unpacked 6-bit min of sub-block j of lane r: pairs (2p, 2p+1) side by side per lane. */
// @ts-ignore: decorator
@inline export function kMinPos(r: i32, j: i32): i32 {
  return 96 + ((j >> 1) << 4) + (r << 1) + (j & 1);
}

/**
 * Q4_Kx8/Q5_Kx8: file quant byte i (0..127: sub-blocks 2(i/32) low nibble, 2(i/32)+1 high nibble,
 * weight i%32) of lane r, from the start of the quants: vector (pair k = i/32, quad l = (i%32)/4,
 * half r/4) at 16 * (16k + 2l + r/4), four bytes per row.
 */
// @ts-ignore: decorator
@inline export function kQuantPos(r: i32, i: i32): i32 {
  return (((i >> 5) << 4) + (((i & 31) >> 2) << 1) + (r >> 2)) * 16 + ((r & 3) << 2) + (i & 3);
}

/** Q5_Kx8: file qh byte l (0..31: bit j = fifth bit of weight l of sub-block j) of lane r. */
// @ts-ignore: decorator
@inline export function kHighPos(r: i32, l: i32): i32 {
  return 160 + (((l >> 2) << 1) + (r >> 2)) * 16 + ((r & 3) << 2) + (l & 3);
}

/** Offset of the quants in a Q4_Kx8 (five false) or Q5_Kx8 group block. */
// @ts-ignore: decorator
@inline export function kQuantBase(five: bool): i32 {
  return five ? 416 : 160;
}

/** True for the types this module packs. */
export function isKQuantPacked(type: i32): bool {
  return type == TYPE_Q4_1 || type == TYPE_Q4_K || type == TYPE_Q5_K;
}

/**
 * Writes `rows` rows of `cols` weights of Q4_1, Q4_K or Q5_K from file layout at src into the packed
 * layout at dst (ceil(rows / PACK_ROWS) groups; padding rows zero). Returns 0, or -1 for another type
 * or cols that are not whole blocks.
 */
export function repackRowsKQuant(type: i32, src: usize, dst: usize, rows: i32, cols: i32): i32 {
  if (!isKQuantPacked(type) || rows < 0 || cols <= 0) return -1;
  const k = type != TYPE_Q4_1;
  if ((cols & (k ? 255 : 31)) != 0) return -1;
  const nb = k ? cols >> 8 : cols >> 5;
  const five = type == TYPE_Q5_K;
  const fileBytes: usize = type == TYPE_Q4_1 ? BYTES_Q4_1 : five ? BYTES_Q5_K : BYTES_Q4_K;
  const groupBytes: usize = type == TYPE_Q4_1 ? PACKED_Q4_1_GROUP : five ? PACKED_Q5_K_GROUP : PACKED_Q4_K_GROUP;
  const groups = (rows + PACK_ROWS - 1) / PACK_ROWS;
  memory.fill(dst, 0, <usize>groups * nb * groupBytes);
  for (let r = 0; r < rows; r++) {
    const lane = r & (PACK_ROWS - 1);
    const row = src + <usize>r * nb * fileBytes;
    const g = dst + <usize>(r / PACK_ROWS) * nb * groupBytes;
    for (let b = 0; b < nb; b++) {
      const sb = row + <usize>b * fileBytes, gb = g + <usize>b * groupBytes;
      // d (and m / dmin) of the row, f16 as in the file
      store<u16>(gb + (lane << 1), load<u16>(sb));
      store<u16>(gb + 16 + (lane << 1), load<u16>(sb + 2));
      if (!k) {
        for (let j = 0; j < 16; j++) store<u8>(gb + q4_1PackedPos(lane, j), load<u8>(sb + 4 + j));
        continue;
      }
      for (let j = 0; j < 8; j++) {
        const sm = scaleMinK4(sb + 4, j);
        store<u8>(gb + kScalePos(lane, j), <u8>(sm & 63));
        store<u8>(gb + kMinPos(lane, j), <u8>(sm >> 8));
      }
      const qs = gb + kQuantBase(five);
      const fileQs = sb + (five ? 48 : 16);
      for (let i = 0; i < 128; i++) store<u8>(qs + kQuantPos(lane, i), load<u8>(fileQs + i));
      if (five) for (let l = 0; l < 32; l++) store<u8>(gb + kHighPos(lane, l), load<u8>(sb + 16 + l));
    }
  }
  return 0;
}

/**
 * dst f32[cols] = row `row` of a packed Q4_1, Q4_K or Q5_K matrix, each value computed as the file
 * dequantizer (ref/dequantize.ts) computes it, so the bits are the same. 0, or -1 for another type.
 */
export function dequantizePackedRowKQuant(type: i32, w: usize, cols: i32, row: i32, dst: usize): i32 {
  if (!isKQuantPacked(type) || row < 0 || cols <= 0) return -1;
  const k = type != TYPE_Q4_1;
  if ((cols & (k ? 255 : 31)) != 0) return -1;
  const nb = k ? cols >> 8 : cols >> 5;
  const five = type == TYPE_Q5_K;
  const groupBytes: usize = type == TYPE_Q4_1 ? PACKED_Q4_1_GROUP : five ? PACKED_Q5_K_GROUP : PACKED_Q4_K_GROUP;
  const lane = row & (PACK_ROWS - 1);
  const g = w + <usize>(row / PACK_ROWS) * nb * groupBytes;
  for (let b = 0; b < nb; b++) {
    const gb = g + <usize>b * groupBytes;
    const d = f16ToF32(load<u16>(gb + (lane << 1))), m = f16ToF32(load<u16>(gb + 16 + (lane << 1)));
    if (!k) {
      const o = dst + (<usize>b << 7);
      for (let j = 0; j < 16; j++) {
        const q = <i32>load<u8>(gb + q4_1PackedPos(lane, j));
        store<f32>(o + (<usize>j << 2), f32(q & 15) * d + m);
        store<f32>(o + (<usize>(j + 16) << 2), f32(q >> 4) * d + m);
      }
      continue;
    }
    const o = dst + (<usize>b << 10);
    const qs = gb + kQuantBase(five);
    for (let i = 0; i < 256; i++) {
      const sub = i >> 5;
      const byte = <i32>load<u8>(qs + kQuantPos(lane, ((sub >> 1) << 5) + (i & 31)));
      let q = (sub & 1) ? byte >> 4 : byte & 15;
      if (five) q += ((<i32>load<u8>(gb + kHighPos(lane, i & 31)) >> sub) & 1) << 4;
      const sc = <i32>load<u8>(gb + kScalePos(lane, sub)), mn = <i32>load<u8>(gb + kMinPos(lane, sub));
      store<f32>(o + (<usize>i << 2), d * f32(sc) * f32(q) - m * f32(mn));
    }
  }
  return 0;
}
