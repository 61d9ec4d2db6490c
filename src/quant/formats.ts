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
export const PACKED_LAYOUT_VERSION = 1;
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
