// The functions the kernel module exports, as TypeScript sees them. Pointers are byte offsets into the
// shared memory; counts are elements (i32). Keep in step with assembly/index.ts.

/** repackRows' result for weights the packed layout cannot carry: an infinity or NaN in F16. */
export const REPACK_NOT_FINITE = -2;

/** out[t*rows + r] = dot(W row r, x row t) for r in [rowStart, rowEnd), t in [0, nTok). */
export type MatmulKernel = (w: number, x: number, out: number, cols: number, rows: number, nTok: number, rowStart: number, rowEnd: number) => void;

/** nTok contiguous rows of `cols` f32 at x to rows of an activation format at dst. */
export type RowConverter = (x: number, dst: number, cols: number, nTok: number) => void;

/**
 * rmsNorm of nTok rows of `cols` f32 at x into out (f32) and, from those rows, the same rows in an
 * activation format at dst: exactly rmsNorm then the converter, in one call (weight 0 = none).
 */
export type NormConverter = (x: number, weight: number, out: number, dst: number, cols: number, nTok: number, eps: number) => void;

/** In-place rotary embedding of nTok rows of nHeads*headDim f32 (positions: i32[nTok]; freqFactors 0 = none). */
export type RopeKernel = (x: number, nTok: number, nHeads: number, headDim: number, nRot: number, positions: number, freqBase: number, freqScale: number, freqFactors: number) => void;

export interface KernelExports {
  /** 0 scalar, 1 simd, 2 relaxed. */
  kernelVariant(): number;
  heapBase(): number;
  selfTestDotI8(a: number, b: number, n: number): number;
  /** a * b + c of f32 values rounded once, as this build's matmul block steps compute it (tests). */
  fmaProbe(a: number, b: number, c: number): number;
  blockSize(type: number): number;
  blockBytes(type: number): number;
  /** Rows per group of a type's packed layout (0: the type stays in file layout). */
  packedRows(type: number): number;
  /** Bytes of one group block of a type's packed layout (0: not packed). */
  packedGroupBytes(type: number): number;
  packedLayoutVersion(): number;
  /**
   * Packs rows x cols of `type` from file layout at src into its packed layout at dst; 0, -1 (a type
   * without a packed layout, or sizes that are not whole blocks), or REPACK_NOT_FINITE.
   */
  repackRows(type: number, src: number, dst: number, rows: number, cols: number): number;
  /** dst f32[cols] = row `row` of a packed matrix of `type`; 0, or -1 for a type that is not packed. */
  dequantizePackedRow(type: number, w: number, cols: number, row: number, dst: number): number;

  /** dst f32[n] from one row of `type`; 0, or -1 for an unknown type. */
  dequantizeRow(type: number, src: number, dst: number, n: number): number;

  quantizeRowsQ8_0: RowConverter;
  quantizeRowsQ8_1: RowConverter;
  quantizeRowsQ8_K: RowConverter;
  convertRowsF16: RowConverter;
  convertRowsBF16: RowConverter;
  rmsNormToQ8_0: NormConverter;
  rmsNormToQ8_1: NormConverter;
  rmsNormToQ8_K: NormConverter;
  rmsNormToF16: NormConverter;
  rmsNormToBF16: NormConverter;

  matmulF32: MatmulKernel;
  matmulF16: MatmulKernel;
  matmulBF16: MatmulKernel;
  /** The file-layout F32/F16/BF16 matmuls the packed ones replace (same bits; tests and benchmarks). */
  matmulFileF32: MatmulKernel;
  matmulFileF16: MatmulKernel;
  matmulFileBF16: MatmulKernel;
  matmulFileQ6_K: MatmulKernel;
  matmulFileQ4_1: MatmulKernel;
  matmulFileQ4_K: MatmulKernel;
  matmulFileQ5_K: MatmulKernel;
  matmulQ4_0: MatmulKernel;
  matmulQ4_1: MatmulKernel;
  matmulQ5_0: MatmulKernel;
  matmulQ5_1: MatmulKernel;
  matmulQ8_0: MatmulKernel;
  matmulQ2_K: MatmulKernel;
  matmulQ3_K: MatmulKernel;
  matmulQ4_K: MatmulKernel;
  matmulQ5_K: MatmulKernel;
  matmulQ6_K: MatmulKernel;

  /** out = x / sqrt(mean(x^2) + eps) * weight (weight 0 = none); nTok rows of cols. */
  rmsNorm(x: number, weight: number, out: number, cols: number, nTok: number, eps: number): void;
  /** Adjacent pairs (i, i+1): llama. */
  ropeNorm: RopeKernel;
  /** Pairs (i, i + nRot/2): neox, qwen2. */
  ropeNeox: RopeKernel;
  /**
   * Causal GQA: nTok queries (rows of nHeads*headDim) at positions pos0.. over k, v = [ctx][kvStride]
   * f32; heads [headStart, headEnd). scratch: pos0 + nTok f32 for this call alone.
   */
  attention(q: number, k: number, v: number, out: number, nTok: number, nHeads: number, nKVHeads: number, headDim: number, kvStride: number, pos0: number, scale: number, scratch: number, headStart: number, headEnd: number): void;
  /**
   * attention() with the keys taken a tile at a time (running max and sum): the same bits for queries
   * seeing at most attentionTileKeys() keys; scratch: attentionTiledScratchBytes() for this call alone.
   */
  attentionTiled: AttentionKernel;
  attentionTiledScratchBytes(): number;
  attentionTileKeys(): number;
  /** out = silu(gate) * up (any split of a range gives the same bits). */
  siluMul(gate: number, up: number, out: number, n: number): void;
  /** silu(gate) * up on nTok rows of cols, exactly llama.cpp's per-row numerics; split only by rows. */
  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void;
  /** dst += src. */
  addRows(dst: number, src: number, n: number): void;
  /** x[t] += bias for nTok rows of cols. */
  addBias(x: number, bias: number, cols: number, nTok: number): void;
  /** x *= s. */
  scaleRows(x: number, s: number, n: number): void;

  /** nTok rows of cols f32 at src to f16 KV-cache rows at dst (row layouts: assembly/ref/kv.ts). */
  kvStoreF16(src: number, dst: number, cols: number, nTok: number): void;
  /** nTok rows of nKVHeads*headDim f32 at src to int8 KV-cache rows (a scale per head, then values). */
  kvStoreInt8(src: number, dst: number, nKVHeads: number, headDim: number, nTok: number): void;
  /** nTok rows of f32 keys at positions pos.. to the int8 key cache whose row 0 is at k (f16 tail, blocks per channel). */
  kvStoreInt8Keys(src: number, k: number, nKVHeads: number, headDim: number, pos: number, nTok: number): void;
  /** attention() over an f16 KV cache (same arguments). */
  attentionKvF16: AttentionKernel;
  /** attention() over an int8 KV cache (same arguments). */
  attentionKvInt8: AttentionKernel;
  /** attentionKvF16 / attentionKvInt8 keys a tile at a time (same bits up to attentionTileKeys() keys); scratch: attentionKvTiledScratchBytes(headDim) per call. */
  attentionKvF16Tiled: AttentionKernel;
  attentionKvInt8Tiled: AttentionKernel;
  attentionKvTiledScratchBytes(headDim: number): number;
}

/** The signature shared by attention and its reduced-precision-cache variants. */
export type AttentionKernel = (q: number, k: number, v: number, out: number, nTok: number, nHeads: number, nKVHeads: number, headDim: number, kvStride: number, pos0: number, scale: number, scratch: number, headStart: number, headEnd: number) => void;
