// Load-time repacking of Q6_K matrices into their packed layout Q6_Kx8 (formats.ts: groups of
// PACK_ROWS rows, per super-block the 8 rows' scales gathered and their 6-bit quants merged into
// bytes 0..63 and interleaved four rows to a vector), the way back for one row, and the byte positions
// the scalar twin of its matmul reads. Scalar in every build: it runs once per weight.
import { BYTES_Q6_K, PACK_ROWS, PACKED_Q6_K_GROUP } from '../formats';
import { loadF16 } from '../half';

/** Q6_Kx8: the i8 scale of 16-weight group g (0..15) of lane r. */
// @ts-ignore: decorator
@inline export function q6ScalePos(r: i32, g: i32): i32 {
  return 16 + (g << 3) + r;
}

/**
 * Q6_Kx8: the merged quant (0..63) of weight i (0..255) of lane r: vector (group g = i/16, quad
 * k = (i%16)/4, half r/4) at 144 + 16 * (8g + 2k + r/4), four bytes (weights 4k..4k+3 of the group)
 * per row.
 */
// @ts-ignore: decorator
@inline export function q6QuantPos(r: i32, i: i32): i32 {
  return 144 + (((i >> 4) << 3) + (((i >> 2) & 3) << 1) + (r >> 2)) * 16 + ((r & 3) << 2) + (i & 3);
}

/** The 6-bit quant (0..63) of weight i of a Q6_K block at wb in file layout. */
// @ts-ignore: decorator
@inline function fileQuant(wb: usize, i: i32): i32 {
  const n = i >> 7, part = (i >> 5) & 3, l = i & 31;
  const qlByte = <i32>load<u8>(wb + (n << 6) + ((part & 1) << 5) + l);
  const low = part < 2 ? qlByte & 15 : qlByte >> 4;
  const high = (<i32>load<u8>(wb + 128 + (n << 5) + l) >> (part << 1)) & 3;
  return low | (high << 4);
}

/** Packs rows x cols Q6_K weights at src (file layout) into Q6_Kx8 at dst; 0, or -1 for bad sizes. */
export function repackQ6KRows(src: usize, dst: usize, rows: i32, cols: i32): i32 {
  if (cols <= 0 || (cols & 255) != 0 || rows < 0) return -1;
  const nb = cols >> 8;
  const groups = (rows + PACK_ROWS - 1) / PACK_ROWS;
  memory.fill(dst, 0, <usize>groups * nb * PACKED_Q6_K_GROUP);
  for (let r = 0; r < rows; r++) {
    const lane = r & (PACK_ROWS - 1);
    const row = src + <usize>r * nb * BYTES_Q6_K;
    const g = dst + <usize>(r / PACK_ROWS) * nb * PACKED_Q6_K_GROUP;
    for (let b = 0; b < nb; b++) {
      const wb = row + <usize>b * BYTES_Q6_K, gb = g + <usize>b * PACKED_Q6_K_GROUP;
      store<u16>(gb + (lane << 1), load<u16>(wb + 208));
      for (let s = 0; s < 16; s++) store<i8>(gb + q6ScalePos(lane, s), load<i8>(wb + 192 + s));
      for (let i = 0; i < 256; i++) store<u8>(gb + q6QuantPos(lane, i), <u8>fileQuant(wb, i));
    }
  }
  return 0;
}

/** dst f32[cols] = row `row` of a Q6_Kx8 matrix, as ref/dequantize.ts computes each weight. */
export function dequantizePackedQ6KRow(w: usize, cols: i32, row: i32, dst: usize): i32 {
  if (cols <= 0 || (cols & 255) != 0 || row < 0) return -1;
  const nb = cols >> 8;
  const lane = row & (PACK_ROWS - 1);
  const g = w + <usize>(row / PACK_ROWS) * nb * PACKED_Q6_K_GROUP;
  for (let b = 0; b < nb; b++) {
    const gb = g + <usize>b * PACKED_Q6_K_GROUP;
    const d = loadF16(gb + (lane << 1));
    for (let i = 0; i < 256; i++) {
      const sc = <i32>load<i8>(gb + q6ScalePos(lane, i >> 4));
      const q = <i32>load<u8>(gb + q6QuantPos(lane, i));
      store<f32>(dst + ((<usize>(b << 8) + i) << 2), d * f32(sc) * f32(q - 32));
    }
  }
  return 0;
}
