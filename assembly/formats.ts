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
export const PACKED_LAYOUT_VERSION: i32 = 3;
/** Rows interleaved per group. */
export const PACK_ROWS: i32 = 8;
/**
 * Q4_0x8 group block: d[8]:f16, then eight 16-byte vectors (quad k = 0..3, row half h): rows
 * 4h..4h+3, four Q4_0 quant bytes 4k..4k+3 each (vector at 16 + 16 * (2k + h)).
 */
export const PACKED_Q4_0_GROUP: i32 = 144;
/** Q8_0x8 group block: d[8]:f16, then qs[8][32], each half of 16 stored evens first (w0 w2 .. w14 w1 w3 .. w15). */
export const PACKED_Q8_0_GROUP: i32 = 272;
/** Q4_1x8 group block: d[8]:f16, m[8]:f16, then the quants as Q4_0x8's (vector (k, h) at 32 + 16 * (2k + h)). */
export const PACKED_Q4_1_GROUP: i32 = 160;
/**
 * Q4_Kx8 group block: d[8]:f16, dmin[8]:f16, scales[sub 8][row 8]:u8 at 32, mins at 96 (byte 96 + 16p +
 * 2r + e: min of sub-block 2p+e, row r), then qs: vector (pair k, quad l, half h) at 160 + 16 * (16k +
 * 2l + h), rows 4h..4h+3, four file quant bytes 32k + 4l.. each.
 */
export const PACKED_Q4_K_GROUP: i32 = 1184;
/** Q5_Kx8 group block: Q4_Kx8's first 160 bytes, qh as vectors (quad l, half h) at 160 + 16 * (2l + h), qs at 416. */
export const PACKED_Q5_K_GROUP: i32 = 1440;

/** repackRows' result for weights a packed layout cannot carry (mirrored in src/runtime/kernel-exports.ts). */
export const REPACK_NOT_FINITE: i32 = -2;

/**
 * F32x8, F16x8, BF16x8 "group block": one column of the group's 8 rows (8 weights, block size 1). The
 * group's columns come in quads of four: quad k at weight 32k holds rows 0..7's weights 4k..4k+3, row
 * after row (a last quad of cols % 4 columns holds that many per row); F16x8 puts the quads of whole
 * 64-column chunks in lane-group order (f16PackedPos). See ref/repack-float.ts.
 */
export const PACKED_F32_GROUP: i32 = 32;
export const PACKED_F16_GROUP: i32 = 16;
export const PACKED_BF16_GROUP: i32 = 16;
/**
 * Q6_Kx8 group block: d[8]:f16, scales[group 16][row 8]:i8 at 16 + 8g + r, then the quants merged to
 * bytes 0..63: vector (group g, quad k, half h) at 144 + 16 * (8g + 2k + h), rows 4h..4h+3, four
 * quants (weights 16g + 4k..) each. See ref/repack-q6k.ts.
 */
export const PACKED_Q6_K_GROUP: i32 = 2192;

/** Rows per group of a type's packed layout, or 0 when the type's weights stay in file layout. */
export function packedRows(type: i32): i32 {
  switch (type) {
    case TYPE_Q4_0:
    case TYPE_Q8_0:
    case TYPE_Q4_1:
    case TYPE_Q4_K:
    case TYPE_Q5_K:
    case TYPE_F32:
    case TYPE_F16:
    case TYPE_BF16:
    case TYPE_Q6_K:
      return PACK_ROWS;
  }
  return 0;
}

/** Bytes of one group block of a type's packed layout, or 0 when the type is not packed. */
export function packedGroupBytes(type: i32): i32 {
  switch (type) {
    case TYPE_Q4_0: return PACKED_Q4_0_GROUP;
    case TYPE_Q8_0: return PACKED_Q8_0_GROUP;
    case TYPE_Q4_1: return PACKED_Q4_1_GROUP;
    case TYPE_Q4_K: return PACKED_Q4_K_GROUP;
    case TYPE_Q5_K: return PACKED_Q5_K_GROUP;
    case TYPE_F32: return PACKED_F32_GROUP;
    case TYPE_F16: return PACKED_F16_GROUP;
    case TYPE_BF16: return PACKED_BF16_GROUP;
    case TYPE_Q6_K: return PACKED_Q6_K_GROUP;
  }
  return 0;
}

export function packedLayoutVersion(): i32 {
  return PACKED_LAYOUT_VERSION;
}
