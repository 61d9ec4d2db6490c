// Block layouts the kernels rely on, mirrored from src/quant/formats.ts (the specification, with
// prose). test/formats.test.ts checks that both sides agree through the exported getters below.

export const QK_K: i32 = 256;
export const QK32: i32 = 32;

// GGML type ids.
export const TYPE_F32: i32 = 0;
export const TYPE_F16: i32 = 1;
export const TYPE_Q4_0: i32 = 2;
export const TYPE_Q4_1: i32 = 3;
export const TYPE_Q5_0: i32 = 6;
export const TYPE_Q5_1: i32 = 7;
export const TYPE_Q8_0: i32 = 8;
export const TYPE_Q8_1: i32 = 9;
export const TYPE_Q2_K: i32 = 10;
export const TYPE_Q3_K: i32 = 11;
export const TYPE_Q4_K: i32 = 12;
export const TYPE_Q5_K: i32 = 13;
export const TYPE_Q6_K: i32 = 14;
export const TYPE_Q8_K: i32 = 15;
export const TYPE_BF16: i32 = 30;

// Bytes per block.
export const BYTES_Q4_0: i32 = 18;
export const BYTES_Q4_1: i32 = 20;
export const BYTES_Q5_0: i32 = 22;
export const BYTES_Q5_1: i32 = 24;
export const BYTES_Q8_0: i32 = 34;
export const BYTES_Q8_1: i32 = 36;
export const BYTES_Q2_K: i32 = 84;
export const BYTES_Q3_K: i32 = 110;
export const BYTES_Q4_K: i32 = 144;
export const BYTES_Q5_K: i32 = 176;
export const BYTES_Q6_K: i32 = 210;
export const BYTES_Q8_K: i32 = 292;

/** Weights per block of a type id, or 0 when the kernels do not know the type. */
export function blockSize(type: i32): i32 {
  switch (type) {
    case TYPE_F32:
    case TYPE_F16:
    case TYPE_BF16:
      return 1;
    case TYPE_Q4_0:
    case TYPE_Q4_1:
    case TYPE_Q5_0:
    case TYPE_Q5_1:
    case TYPE_Q8_0:
    case TYPE_Q8_1:
      return QK32;
    case TYPE_Q2_K:
    case TYPE_Q3_K:
    case TYPE_Q4_K:
    case TYPE_Q5_K:
    case TYPE_Q6_K:
    case TYPE_Q8_K:
      return QK_K;
  }
  return 0;
}

/** Bytes per block of a type id, or 0 when the kernels do not know the type. */
export function blockBytes(type: i32): i32 {
  switch (type) {
    case TYPE_F32: return 4;
    case TYPE_F16: return 2;
    case TYPE_BF16: return 2;
    case TYPE_Q4_0: return BYTES_Q4_0;
    case TYPE_Q4_1: return BYTES_Q4_1;
    case TYPE_Q5_0: return BYTES_Q5_0;
    case TYPE_Q5_1: return BYTES_Q5_1;
    case TYPE_Q8_0: return BYTES_Q8_0;
    case TYPE_Q8_1: return BYTES_Q8_1;
    case TYPE_Q2_K: return BYTES_Q2_K;
    case TYPE_Q3_K: return BYTES_Q3_K;
    case TYPE_Q4_K: return BYTES_Q4_K;
    case TYPE_Q5_K: return BYTES_Q5_K;
    case TYPE_Q6_K: return BYTES_Q6_K;
    case TYPE_Q8_K: return BYTES_Q8_K;
  }
  return 0;
}

// ---- packed weight layouts (the prose is in src/quant/formats.ts, "Packed layouts") ----
// A packed matrix is cut into groups of PACK_ROWS consecutive rows (the last group padded with zero
// rows); group g holds, for each block column b in order, one "group block" of PACK_ROWS blocks:
// their scales gathered first, then their quants, row by row.

/** Bumped whenever a packed layout changes (a packed-weight cache keys on it). */
export const PACKED_LAYOUT_VERSION: i32 = 1;
/** Rows interleaved per group. */
export const PACK_ROWS: i32 = 8;
/**
 * Q4_0x8 group block: d[8]:f16, then eight 16-byte vectors (quad k = 0..3, row half h): rows
 * 4h..4h+3, four Q4_0 quant bytes 4k..4k+3 each (vector at 16 + 16 * (2k + h)).
 */
export const PACKED_Q4_0_GROUP: i32 = 144;
/** Q8_0x8 group block: d[8]:f16, then qs[8][32], each half of 16 stored evens first (w0 w2 .. w14 w1 w3 .. w15). */
export const PACKED_Q8_0_GROUP: i32 = 272;

/** Rows per group of a type's packed layout, or 0 when the type's weights stay in file layout. */
export function packedRows(type: i32): i32 {
  switch (type) {
    case TYPE_Q4_0:
    case TYPE_Q8_0:
      return PACK_ROWS;
  }
  return 0;
}

/** Bytes of one group block of a type's packed layout, or 0 when the type is not packed. */
export function packedGroupBytes(type: i32): i32 {
  switch (type) {
    case TYPE_Q4_0: return PACKED_Q4_0_GROUP;
    case TYPE_Q8_0: return PACKED_Q8_0_GROUP;
  }
  return 0;
}

export function packedLayoutVersion(): i32 {
  return PACKED_LAYOUT_VERSION;
}
