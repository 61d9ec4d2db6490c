// Load-time repacking of F32, F16 and BF16 weight matrices into their packed layouts F32x8, F16x8 and
// BF16x8 (formats.ts: groups of PACK_ROWS rows, columns in quads of four, the group's rows interleaved
// quad by quad), and one row read back (a tied embedding matrix is looked up in its packed copy).
// Scalar in every build: it runs once per weight and only moves bytes.
import { PACK_ROWS, REPACK_NOT_FINITE, TYPE_BF16, TYPE_F16, TYPE_F32 } from '../formats';
import { bf16ToF32, f16ToF32 } from '../half';

/** Bytes per weight of a float type with a packed layout, or 0 for any other type. */
export function floatWeightBytes(type: i32): i32 {
  if (type == TYPE_F32) return 4;
  if (type == TYPE_F16 || type == TYPE_BF16) return 2;
  return 0;
}

/**
 * Element index, inside a group of PACK_ROWS rows of `cols` weights, of weight i of lane r: quad
 * k = i/4 starts at element 32k and holds the 8 rows' weights 4k..4k+3 row after row, w of them per
 * row (w = 4 but in a last quad of cols % 4 weights).
 */
// @ts-ignore: decorator
@inline export function floatPackedPos(r: i32, i: i32, cols: i32): i32 {
  const q0 = i & ~3;
  const w = min(4, cols - q0);
  return (q0 << 3) + r * w + (i & 3);
}

/**
 * F16x8 orders the quads of the whole 64-column chunks by lane group first: quad k < cols/64*16 (lane
 * group q = k % 16 of chunk c = k / 16) goes to slot q * (cols / 64) + c, so the kernel's pass over one
 * lane group of every chunk (the 64-lane order of ggml_vec_dot_f16) reads one contiguous run; the
 * quads past the last whole chunk keep their places. Element index of weight i of lane r.
 */
// @ts-ignore: decorator
@inline export function f16PackedPos(r: i32, i: i32, cols: i32): i32 {
  const nChunks = cols >> 6;
  if (i >= nChunks << 6) return floatPackedPos(r, i, cols);
  return ((((i >> 2) & 15) * nChunks + (i >> 6)) << 5) + (r << 2) + (i & 3);
}

/** Element index of weight i of lane r in the packed layout of a float type (F16x8 or the plain order). */
// @ts-ignore: decorator
@inline export function floatTypePackedPos(type: i32, r: i32, i: i32, cols: i32): i32 {
  return type == TYPE_F16 ? f16PackedPos(r, i, cols) : floatPackedPos(r, i, cols);
}

/**
 * Copies rows x cols weights of a float type at src (file layout) into its packed layout at dst; 0, -1
 * for another type or bad sizes, or REPACK_NOT_FINITE for F16 weights holding an infinity or NaN (the
 * F16x8 kernels convert halves in a way that is exact for finite values only, see
 * simd/matmul-packed-float.ts).
 */
export function repackFloatRows(type: i32, src: usize, dst: usize, rows: i32, cols: i32): i32 {
  const e = floatWeightBytes(type);
  if (e == 0 || cols <= 0 || rows < 0) return -1;
  if (type == TYPE_F16) {
    const n = <usize>rows * cols;
    for (let i: usize = 0; i < n; i++) if ((load<u16>(src + (i << 1)) & 0x7c00) == 0x7c00) return REPACK_NOT_FINITE;
  }
  const groups = (rows + PACK_ROWS - 1) / PACK_ROWS;
  const groupBytes = <usize>PACK_ROWS * cols * e;
  memory.fill(dst, 0, <usize>groups * groupBytes);
  for (let r = 0; r < rows; r++) {
    const lane = r & (PACK_ROWS - 1);
    const row = src + <usize>r * cols * e;
    const g = dst + <usize>(r / PACK_ROWS) * groupBytes;
    // whole quads: four weights at a time
    const n4 = cols & ~3;
    for (let i = 0; i < n4; i += 4) {
      const d = g + <usize>floatTypePackedPos(type, lane, i, cols) * e;
      if (e == 4) v128Copy16(d, row + (<usize>i << 2));
      else store<u64>(d, load<u64>(row + (<usize>i << 1)));
    }
    for (let i = n4; i < cols; i++) {
      const d = g + <usize>floatTypePackedPos(type, lane, i, cols) * e;
      if (e == 4) store<u32>(d, load<u32>(row + (<usize>i << 2)));
      else store<u16>(d, load<u16>(row + (<usize>i << 1)));
    }
  }
  return 0;
}

// @ts-ignore: decorator
@inline function v128Copy16(d: usize, s: usize): void {
  store<u64>(d, load<u64>(s));
  store<u64>(d + 8, load<u64>(s + 8));
}

/** dst f32[cols] = row `row` of a packed float matrix of `type`; 0, or -1 for another type. */
export function dequantizePackedFloatRow(type: i32, w: usize, cols: i32, row: i32, dst: usize): i32 {
  const e = floatWeightBytes(type);
  if (e == 0 || cols <= 0 || row < 0) return -1;
  const lane = row & (PACK_ROWS - 1);
  const g = w + <usize>(row / PACK_ROWS) * PACK_ROWS * cols * e;
  for (let i = 0; i < cols; i++) {
    const p = g + <usize>floatTypePackedPos(type, lane, i, cols) * e;
    const v: f32 = type == TYPE_F32 ? load<f32>(p) : type == TYPE_F16 ? f16ToF32(load<u16>(p)) : bf16ToF32(load<u16>(p));
    store<f32>(dst + (<usize>i << 2), v);
  }
  return 0;
}
