// The one specification of every tensor storage format pocketllm knows: GGML type ids, block sizes,
// bytes per block, and the byte layout of each block. `assembly/formats.ts` mirrors the constants the
// kernels need; test/formats.test.ts holds the two sides together.
//
// Layouts (all little-endian; "f16" is IEEE half, "bf16" is bfloat16; a block holds BLOCK weights):
//
//   F32   1 weight, 4 bytes.                                                   32   bits/weight
//   F16   1 weight, 2 bytes.                                                   16
//   BF16  1 weight, 2 bytes (top half of an f32).                              16
//   Q4_0  32 weights, 18 bytes: d:f16, qs[16]. Weight j<16 is the low nibble of qs[j], weight j+16 the
//         high nibble; value = d * (q - 8).                                    4.5
//   Q4_1  32 weights, 20 bytes: d:f16, m:f16, qs[16] (nibbles as Q4_0); value = d * q + m.   5
//   Q5_0  32 weights, 22 bytes: d:f16, qh:u32 (bit j = 5th bit of weight j), qs[16] (as Q4_0);
//         value = d * (q - 16).                                                5.5
//   Q5_1  32 weights, 24 bytes: d:f16, m:f16, qh:u32, qs[16]; value = d * q + m.              6
//   Q8_0  32 weights, 34 bytes: d:f16, qs[32]:i8; value = d * q.              8.5
//   Q8_1  32 weights, 36 bytes: d:f16, s:f16 (= d * sum q), qs[32]:i8. Only as an activation format.
//
//   The k-quants group 256 weights into a super-block of sub-blocks, each sub-block with its own scale
//   (and min) quantized against the super-block's f16 scale(s):
//   Q2_K  256 weights, 84 bytes: scales[16] (low nibble scale, high nibble min, per 16 weights),
//         qs[64] (2 bits each), d:f16, dmin:f16; value = d*sc*q - dmin*m.      2.625
//   Q3_K  256 weights, 110 bytes: hmask[32] (high bit), qs[64] (low 2 bits), scales[12] (16 six-bit
//         scales, offset by 32), d:f16; value = d*(sc-32)*(q - (hbit ? 0 : 4)). 3.4375
//   Q4_K  256 weights, 144 bytes: d:f16, dmin:f16, scales[12] (8 six-bit scales and 8 six-bit mins,
//         packed), qs[128] (4 bits, 32-weight sub-blocks, low nibbles then high nibbles per 64);
//         value = d*sc*q - dmin*m.                                            4.5
//   Q5_K  256 weights, 176 bytes: d:f16, dmin:f16, scales[12] (as Q4_K), qh[32], qs[128].     5.5
//   Q6_K  256 weights, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16]:i8 (per 16
//         weights), d:f16; value = d*sc*(q - 32).                              6.5625
//   Q8_K  256 weights, 292 bytes: d:f32, qs[256]:i8, bsums[16]:i16 (sums of each 16 qs). Activation
//         format for the k-quant dot products.                                 9.125
//
// The IQ*, TQ* and MXFP4 types are listed so that files holding them can be read and their sizes
// checked; pocketllm cannot compute with them and says so when a model needs one.
//
// Packed layouts (in wasm memory only, never in a file). At load, a weight matrix of a packed type is
// rewritten once into the layout its kernels want (assembly/ref/repack.ts), so that one activation
// load feeds several rows and a block's scales come in one vector load. A packed matrix is cut into
// groups of PACK_ROWS = 8 consecutive rows (the last group padded with zero rows); group g holds, for
// each block column b in order, one "group block" with the 8 rows' blocks b, scales first:
//
//   group g = rows 8g..8g+7:   [ group block b=0 ][ group block b=1 ] ... [ group block b=nb-1 ]
//
//   Q4_0x8 group block, 144 bytes (= 8 Q4_0 blocks):
//     byte 0       16                 32                 48                       128            144
//          [d0..d7][k=0: rows 0-3     ][k=0: rows 4-7     ][k=1: rows 0-3] ... [k=3: rows 4-7]
//     d_r: f16 scale of row r's block. Then eight 16-byte vectors, quad k = 0..3 by row half: vector
//     (k, half h) holds rows 4h..4h+3, four bytes each: that row's Q4_0 quant bytes qs[4k..4k+3]
//     (byte j: weight j low nibble, weight j+16 high nibble, as in the file):
//          | r0 qs[4k..4k+3] | r1 qs[4k..4k+3] | r2 qs[4k..4k+3] | r3 qs[4k..4k+3] |
//     One AND (or a shift) of a vector and one dot with x[4k..4k+3] (or x[16+4k..]) repeated four
//     times gives four rows' partial sums in four lanes, so a block sum needs no horizontal reduction.
//     Nibbles stay unsigned 0..15 and the zero point 8 is applied through the activations' sums
//     (sum (q-8) x = sum q x - 8 sum x), which keeps the relaxed dot's 7-bit operand in range.
//   Q8_0x8 group block, 272 bytes (= 8 Q8_0 blocks):
//          [d0 .. d7][qs row 0 (32 B)] ... [qs row 7 (32 B)]
//     each row's 32 signed quants in two halves of 16, each half evens first:
//          w0 w2 w4 .. w14 w1 w3 .. w15 | w16 w18 .. w30 w17 .. w31
//     so sign-extending the low and high 8 bytes gives the even and odd weights as i16x8: the operands
//     of the exact x86 quad grouping (lane i = weights 4i..4i+3) with two i16 dot products.
//   Q4_1x8 group block, 160 bytes (= 8 Q4_1 blocks):
//     byte 0       16       32                 48                       144            160
//          [d0..d7][m0..m7][k=0: rows 0-3     ][k=0: rows 4-7] ... [k=3: rows 4-7]
//     d_r, m_r: f16 scale and min of row r's block; the quants exactly as Q4_0x8's, 16 bytes later.
//     The min term m_r * s (Q8_1's s) is added per row after the block's integer sum.
//   Q4_Kx8 group block, 1184 bytes (= 8 Q4_K blocks, scales unpacked: +32 bytes):
//     byte 0        16           32                96                160                     1184
//          [d0..d7][dmin0..dmin7][sc[j][r]: 64 B  ][mn pairs: 64 B  ][qs: 64 vectors of 16 B]
//     d_r, dmin_r: f16 super-block scales of row r. sc: the 6-bit scale of sub-block j (0..7) of row r
//     as one byte at 32 + 8j + r, so sub-block j's scales of rows 4h..4h+3 are one 4-byte load.
//     mn: the 6-bit mins, sub-blocks 2p and 2p+1 of row r side by side at 96 + 16p + 2r (+0, +1), so
//     widening 8 bytes to i16 and one i16 dot with (bsum pair 2p, bsum pair 2p+1) gives four rows' part
//     of sum_j m_j * (bsums_2j + bsums_2j+1). qs: vector (pair k = 0..3, quad l = 0..7, half h) at
//     160 + 16 * (16k + 2l + h), rows 4h..4h+3, four bytes each: that row's file quant bytes
//     qs[32k + 4l .. 32k + 4l + 3] (low nibble: sub-block 2k weight 4l+i, high: sub-block 2k+1):
//          | r0 qs[32k+4l..+3] | r1 .. | r2 .. | r3 .. |
//     As for Q4_0x8, one AND (or shift) and one dot with x[64k + 4l..] (or x[64k + 32 + 4l..]) repeated
//     four times gives four rows' partial sums in four lanes; the vectors come in the loop's order.
//   Q5_Kx8 group block, 1440 bytes (= 8 Q5_K blocks + 32):
//          [d, dmin, sc, mn as Q4_Kx8: 160 B][qh: 16 vectors of 16 B][qs as Q4_Kx8: 1024 B]
//     qh vector (quad l, half h) at 160 + 16 * (2l + h): rows 4h..4h+3, that row's file qh[4l..4l+3]
//     (bit j = fifth bit of weight 4l+i of sub-block j), so it lines up byte for byte with every qs
//     vector of quad l. 4-bit (5-bit) quants stay unsigned 0..15 (0..31) in all three layouts: the
//     relaxed dot's 7-bit operand; the mins meet the activations through their block sums.
//   F32x8, F16x8, BF16x8 (the float types, block size 1, so a "group block" is one column of the 8
//   rows: 32, 16, 16 bytes): the weights as in the file, the group's rows interleaved by column quads.
//   Quad k (columns 4k..4k+3) starts at weight 32k of the group and holds the 8 rows' four weights,
//   row after row; a last quad of cols % 4 columns holds that many per row:
//     weight  0        4        8             28       32                            32k + r*w + j
//          [r0 w0-3][r1 w0-3][r2 w0-3] ... [r7 w0-3][r0 w4-7] ... [r7 w4-7] ...  (w = 4, or the tail)
//     F32x8: one 16-byte vector is one row's quad (4 rows = 64 bytes); F16x8/BF16x8: one vector is
//     two rows' quads (rows 2p, 2p+1), so each load feeds a 4-row unit that shares one activation
//     quad per token. The weights stay exactly as in the file, so each output keeps the float order
//     of its file-layout kernel.
//     F16x8 alone moves the quads of the whole 64-column chunks (nc = cols / 64 of them): quad
//     16c + q (lane group q = 0..15 of chunk c, the 64-lane order of ggml_vec_dot_f16) sits in quad
//     slot q * nc + c, so one lane group of every chunk is one contiguous run; the quads past the last
//     whole chunk keep their slots (k = 16 nc ..):
//          [q=0: c=0 c=1 .. c=nc-1][q=1: c=0 ..] ... [q=15: .. c=nc-1][tail quads]
//   Q6_Kx8 group block, 2192 bytes (= 8 Q6_K blocks of 210 bytes, quants widened to a byte: +512):
//     byte 0       16                      144                                              2192
//          [d0..d7][sc[g][r]: 16 x 8 i8 ][q: 128 vectors of 16 B: (g=0,k=0,h=0) (0,0,1) (0,1,0) ...]
//     d_r: f16 super-block scale of row r. sc: the i8 scale of 16-weight group g (0..15) of row r at
//     16 + 8g + r, so a group's 8 scales are one 8-byte load. q: each weight's 6 bits (low 4 from ql,
//     high 2 from qh) merged into one byte 0..63; vector (group g, quad k = 0..3, half h) at
//     144 + 16 * (8g + 2k + h) holds rows 4h..4h+3, four bytes each (weights 16g + 4k .. 16g + 4k + 3):
//          | r0 q[16g+4k..+3] | r1 .. | r2 .. | r3 .. |
//     One dot with x[16g+4k..+3] repeated four times gives four rows' partial sums in four lanes, the
//     quants the relaxed dot's 7-bit operand; the offset 32 comes back through Q8_K's bsums
//     (sum (q-32) x = sum q x - 32 bsum_g).
//
// Every other type keeps its file layout in memory. PACKED_LAYOUT_VERSION changes with any of the
// above (a packed-weight cache keys on it).

/** GGML tensor type ids, as stored in GGUF tensor infos. */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

/** Super-block size of the k-quants. */
export const QK_K = 256;
/** Block size of the 32-weight formats (Q4_0 ... Q8_1). */
export const QK32 = 32;

export interface TypeTraits {
  readonly type: GGMLType;
  readonly name: string;
  /** Weights per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** True when pocketllm can dequantize and compute with this type. */
  readonly supported: boolean;
}

function traits(type: GGMLType, blockSize: number, blockBytes: number, supported: boolean): TypeTraits {
  return { type, name: GGMLType[type], blockSize, blockBytes, supported };
}

/** The type traits table: every GGML type pocketllm recognises, keyed by id. */
export const TYPE_TRAITS: ReadonlyMap<number, TypeTraits> = new Map<number, TypeTraits>(
  [
    traits(GGMLType.F32, 1, 4, true),
    traits(GGMLType.F16, 1, 2, true),
    traits(GGMLType.BF16, 1, 2, true),
    traits(GGMLType.Q4_0, 32, 18, true),
    traits(GGMLType.Q4_1, 32, 20, true),
    traits(GGMLType.Q5_0, 32, 22, true),
    traits(GGMLType.Q5_1, 32, 24, true),
    traits(GGMLType.Q8_0, 32, 34, true),
    traits(GGMLType.Q8_1, 32, 36, true),
    traits(GGMLType.Q2_K, 256, 84, true),
    traits(GGMLType.Q3_K, 256, 110, true),
    traits(GGMLType.Q4_K, 256, 144, true),
    traits(GGMLType.Q5_K, 256, 176, true),
    traits(GGMLType.Q6_K, 256, 210, true),
    traits(GGMLType.Q8_K, 256, 292, true),
    traits(GGMLType.IQ2_XXS, 256, 66, false),
    traits(GGMLType.IQ2_XS, 256, 74, false),
    traits(GGMLType.IQ3_XXS, 256, 98, false),
    traits(GGMLType.IQ1_S, 256, 50, false),
    traits(GGMLType.IQ4_NL, 32, 18, false),
    traits(GGMLType.IQ3_S, 256, 110, false),
    traits(GGMLType.IQ2_S, 256, 82, false),
    traits(GGMLType.IQ4_XS, 256, 136, false),
    traits(GGMLType.I8, 1, 1, false),
    traits(GGMLType.I16, 1, 2, false),
    traits(GGMLType.I32, 1, 4, false),
    traits(GGMLType.I64, 1, 8, false),
    traits(GGMLType.F64, 1, 8, false),
    traits(GGMLType.IQ1_M, 256, 56, false),
    traits(GGMLType.TQ1_0, 256, 54, false),
    traits(GGMLType.TQ2_0, 256, 66, false),
    traits(GGMLType.MXFP4, 32, 17, false),
  ].map((t) => [t.type, t]),
);

/** Bumped whenever a packed layout changes; mirrored by assembly/formats.ts. */
export const PACKED_LAYOUT_VERSION = 3;
/** Rows interleaved per group of a packed layout. */
export const PACK_ROWS = 8;

export interface PackedLayout {
  readonly type: GGMLType;
  /** e.g. "Q4_0x8". */
  readonly name: string;
  /** Rows per group. */
  readonly rows: number;
  /** Bytes of one group block (PACK_ROWS blocks, one per row, of one block column). */
  readonly groupBlockBytes: number;
}

/** The weight types kept packed in memory, and their layouts (described above). */
export const PACKED_LAYOUTS: ReadonlyMap<GGMLType, PackedLayout> = new Map(
  [
    { type: GGMLType.Q4_0, name: 'Q4_0x8', rows: PACK_ROWS, groupBlockBytes: 144 },
    { type: GGMLType.Q8_0, name: 'Q8_0x8', rows: PACK_ROWS, groupBlockBytes: 272 },
    { type: GGMLType.Q4_1, name: 'Q4_1x8', rows: PACK_ROWS, groupBlockBytes: 160 },
    { type: GGMLType.Q4_K, name: 'Q4_Kx8', rows: PACK_ROWS, groupBlockBytes: 1184 },
    { type: GGMLType.Q5_K, name: 'Q5_Kx8', rows: PACK_ROWS, groupBlockBytes: 1440 },
    { type: GGMLType.F32, name: 'F32x8', rows: PACK_ROWS, groupBlockBytes: 32 },
    { type: GGMLType.F16, name: 'F16x8', rows: PACK_ROWS, groupBlockBytes: 16 },
    { type: GGMLType.BF16, name: 'BF16x8', rows: PACK_ROWS, groupBlockBytes: 16 },
    { type: GGMLType.Q6_K, name: 'Q6_Kx8', rows: PACK_ROWS, groupBlockBytes: 2192 },
  ].map((l) => [l.type, l]),
);

/** Bytes of a rows x cols matrix of `type` in its packed layout (whole groups), or undefined when not packed. */
export function packedMatrixBytes(type: GGMLType, rows: number, cols: number): number | undefined {
  const l = PACKED_LAYOUTS.get(type);
  if (!l) return undefined;
  const t = TYPE_TRAITS.get(type)!;
  if (cols % t.blockSize !== 0) throw new Error(`row of ${cols} weights is not a multiple of ${t.name}'s block of ${t.blockSize}`);
  return Math.ceil(rows / l.rows) * (cols / t.blockSize) * l.groupBlockBytes;
}

/** Traits of a type id, or undefined when the id is not a GGML type pocketllm knows. */
export function typeTraits(type: number): TypeTraits | undefined {
  return TYPE_TRAITS.get(type);
}

/** Bits per weight of a type (block bytes * 8 / block size). */
export function bitsPerWeight(type: GGMLType): number {
  const t = TYPE_TRAITS.get(type);
  if (!t) throw new Error(`unknown GGML type ${type}`);
  return (t.blockBytes * 8) / t.blockSize;
}

/** Bytes taken by one row of `n` weights; throws when n is not a whole number of blocks. */
export function rowBytes(type: GGMLType, n: number): number {
  const t = TYPE_TRAITS.get(type);
  if (!t) throw new Error(`unknown GGML type ${type}`);
  if (n % t.blockSize !== 0) throw new Error(`row of ${n} weights is not a multiple of ${t.name}'s block of ${t.blockSize}`);
  return (n / t.blockSize) * t.blockBytes;
}

/** Parses a type name such as "q4_0", "Q4_K" or "f16" (case-insensitive). */
export function parseTypeName(name: string): GGMLType | undefined {
  const upper = name.toUpperCase();
  for (const t of TYPE_TRAITS.values()) if (t.name === upper) return t.type;
  return undefined;
}
