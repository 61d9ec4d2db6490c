// Load-time repacking of file-layout weight matrices into the packed layouts of formats.ts (groups of
// PACK_ROWS rows, scales gathered, quants interleaved row by row), and the way back for one row (the
// embedding lookup of a tied embedding matrix reads its rows from the packed copy). Scalar in every
// build: each runs once per weight, and only moves bytes.
import {
  BYTES_Q4_0, BYTES_Q8_0, PACK_ROWS, PACKED_Q4_0_GROUP, PACKED_Q8_0_GROUP, TYPE_Q4_0, TYPE_Q8_0,
} from '../formats';
import { f16ToF32 } from '../half';
import { dequantizePackedRowKQuant, isKQuantPacked, repackRowsKQuant } from './repack-kquant';
import { dequantizePackedFloatRow, floatWeightBytes, repackFloatRows } from './repack-float';
import { dequantizePackedQ6KRow, repackQ6KRows } from './repack-q6k';
import { TYPE_Q6_K } from '../formats';

/**
 * Byte offset, from the start of a Q4_0x8 group block's quants (byte 16), of quant byte j (0..15: weight
 * j in the low nibble, j+16 in the high one) of lane r (0..7): 16-byte vectors v = 2*(j/4) + r/4, each
 * holding quants 4(j/4)..4(j/4)+3 of rows 4(r/4)..4(r/4)+3, four bytes per row.
 */
// @ts-ignore: decorator
@inline export function q4PackedPos(r: i32, j: i32): i32 {
  return (((j >> 2) << 1) + (r >> 2)) * 16 + ((r & 3) << 2) + (j & 3);
}

/** Byte position, within one packed Q8_0 row's 32 quants, of weight j: each half of 16 evens first. */
// @ts-ignore: decorator
@inline export function q8PackedPos(j: i32): i32 {
  const k = j & 15;
  return (j & 16) + ((k & 1) << 3) + (k >> 1);
}

/**
 * Writes `rows` rows of `cols` weights of `type` from file layout at src into the packed layout at dst
 * (ceil(rows / PACK_ROWS) groups; padding rows are zero). Returns 0, -1 for a type without a packed
 * layout or cols that are not whole blocks, or REPACK_NOT_FINITE when the weights hold a value the
 * layout cannot carry (an infinity or NaN in F16).
 */
export function repackRows(type: i32, src: usize, dst: usize, rows: i32, cols: i32): i32 {
  if (isKQuantPacked(type)) return repackRowsKQuant(type, src, dst, rows, cols); // Q4_1, Q4_K, Q5_K
  if (floatWeightBytes(type) != 0) return repackFloatRows(type, src, dst, rows, cols); // F32, F16, BF16
  if (type == TYPE_Q6_K) return repackQ6KRows(src, dst, rows, cols);
  if (cols <= 0 || (cols & 31) != 0 || rows < 0) return -1;
  const nb = cols >> 5;
  const groups = (rows + PACK_ROWS - 1) / PACK_ROWS;
  if (type == TYPE_Q4_0) {
    memory.fill(dst, 0, <usize>groups * nb * PACKED_Q4_0_GROUP);
    for (let r = 0; r < rows; r++) {
      const lane = r & (PACK_ROWS - 1);
      const row = src + <usize>r * nb * BYTES_Q4_0;
      const g = dst + <usize>(r / PACK_ROWS) * nb * PACKED_Q4_0_GROUP;
      for (let b = 0; b < nb; b++) {
        const sb = row + <usize>b * BYTES_Q4_0, gb = g + <usize>b * PACKED_Q4_0_GROUP;
        store<u16>(gb + (lane << 1), load<u16>(sb));
        for (let j = 0; j < 16; j++) store<u8>(gb + 16 + q4PackedPos(lane, j), load<u8>(sb + 2 + j));
      }
    }
    return 0;
  }
  if (type == TYPE_Q8_0) {
    memory.fill(dst, 0, <usize>groups * nb * PACKED_Q8_0_GROUP);
    for (let r = 0; r < rows; r++) {
      const lane = r & (PACK_ROWS - 1);
      const row = src + <usize>r * nb * BYTES_Q8_0;
      const g = dst + <usize>(r / PACK_ROWS) * nb * PACKED_Q8_0_GROUP;
      for (let b = 0; b < nb; b++) {
        const sb = row + <usize>b * BYTES_Q8_0, gb = g + <usize>b * PACKED_Q8_0_GROUP;
        store<u16>(gb + (lane << 1), load<u16>(sb));
        const q = gb + 16 + (lane << 5);
        for (let j = 0; j < 32; j++) store<u8>(q + q8PackedPos(j), load<u8>(sb + 2 + j));
      }
    }
    return 0;
  }
  return -1;
}

/** dst f32[cols] = row `row` of a packed matrix of `type`; 0, or -1 for a type that is not packed. */
export function dequantizePackedRow(type: i32, w: usize, cols: i32, row: i32, dst: usize): i32 {
  if (isKQuantPacked(type)) return dequantizePackedRowKQuant(type, w, cols, row, dst);
  if (floatWeightBytes(type) != 0) return dequantizePackedFloatRow(type, w, cols, row, dst);
  if (type == TYPE_Q6_K) return dequantizePackedQ6KRow(w, cols, row, dst);
  if (cols <= 0 || (cols & 31) != 0 || row < 0) return -1;
  const nb = cols >> 5;
  const lane = row & (PACK_ROWS - 1);
  if (type == TYPE_Q4_0) {
    const g = w + <usize>(row / PACK_ROWS) * nb * PACKED_Q4_0_GROUP;
    for (let b = 0; b < nb; b++) {
      const gb = g + <usize>b * PACKED_Q4_0_GROUP;
      const d = f16ToF32(load<u16>(gb + (lane << 1)));
      const o = dst + (<usize>b << 7);
      for (let j = 0; j < 16; j++) {
        const byte = <i32>load<u8>(gb + 16 + q4PackedPos(lane, j));
        store<f32>(o + (<usize>j << 2), <f32>((byte & 15) - 8) * d);
        store<f32>(o + (<usize>(j + 16) << 2), <f32>((byte >> 4) - 8) * d);
      }
    }
    return 0;
  }
  if (type == TYPE_Q8_0) {
    const g = w + <usize>(row / PACK_ROWS) * nb * PACKED_Q8_0_GROUP;
    for (let b = 0; b < nb; b++) {
      const gb = g + <usize>b * PACKED_Q8_0_GROUP;
      const d = f16ToF32(load<u16>(gb + (lane << 1)));
      const q = gb + 16 + (lane << 5);
      const o = dst + (<usize>b << 7);
      for (let j = 0; j < 32; j++) store<f32>(o + (<usize>j << 2), <f32>load<i8>(q + q8PackedPos(j)) * d);
    }
    return 0;
  }
  return -1;
}
