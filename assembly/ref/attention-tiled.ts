// Scalar twin of the tiled causal grouped-query attention over an f32 KV cache (simd/attention-tiled.ts):
// the keys of each query are taken ATTN_TILE_K at a time with a running max and sum (the FlashAttention-2
// recurrence), so the workspace is a few tiles whatever the context length.
//
// The rule that keeps today's bits: a query whose keys all fit in one key tile (position < ATTN_TILE_K)
// gets exactly the operations of ref/attention.ts (scores, max, exps, the f64 sum, p = e * (1 / sum),
// out = sum of p * v in position order from 0), so prompts and chats up to ATTN_TILE_K tokens give the
// same bits as the one-pass kernel. Past that, per query and key tile b = 0..L (tile b holds positions
// [b*TK, b*TK + TK) that the query sees):
//   s_j  = f32(q.k_j) * scale                    (q.k in the four-lane order of ref/attention.ts)
//   M_b  = max(M_{b-1}, max_j s_j)                (M_{-1} = -inf)
//   a    = expf32(M_{b-1} - M_b)                  (not used for b = 0)
//   e_j  = expf32(s_j - M_b)
//   l    = l * a + e_j, one by one in f64         (l starts at 0: for one tile, the one-pass f64 sum)
//   b < L: out = out * a         + e_j * v_j, one by one in position order (f32)
//   b = L: inv = f32(1 / l); out = out * f32(a * inv) + (e_j * inv) * v_j
// so the normalisation is folded into the last tile and no final pass over out is needed. Exps, maxima
// and the weighted sums are f32 (the sum of exps f64, as ggml's soft_max and our one-pass kernel). A
// query's bits depend only on its position and the absolute tile boundaries, not on how the queries
// are batched or which heads a call takes: prefill and token-by-token decode give the same bits.
import { expf32 } from './expf';
import { dotQK } from './attention';

/** Query rows per tile of the SIMD kernel, written for four (the twin takes one at a time: same bits per row). */
export const ATTN_TILE_Q: i32 = 4;
/** Keys per key tile; also the longest run of keys that keeps the one-pass kernel's bits. */
export const ATTN_TILE_K: i32 = 128;
/** Workspace layout: per query of a tile l (f64), M (f32), factor (f32), then its TILE_K scores. */
export const ATTN_TILE_SUM_OFF: usize = 0;
export const ATTN_TILE_MAX_OFF: usize = <usize>ATTN_TILE_Q << 3;
export const ATTN_TILE_FACTOR_OFF: usize = ATTN_TILE_MAX_OFF + (<usize>ATTN_TILE_Q << 2);
export const ATTN_TILE_SCORES_OFF: usize = ATTN_TILE_FACTOR_OFF + (<usize>ATTN_TILE_Q << 2);
/** Bytes of one call's workspace, independent of the context length and head size. */
export const ATTN_TILE_SCRATCH_BYTES: usize = ATTN_TILE_SCORES_OFF + ((<usize>(ATTN_TILE_Q * ATTN_TILE_K)) << 2);

/**
 * One query's softmax step on its c scores of a key tile (at ATTN_TILE_SCORES_OFF in ws, replaced by
 * their weights: e, or e * inv on the last tile), the recurrence at the top: the running max M and
 * f64 sum l live in ws (slot 0 of ATTN_TILE_MAX_OFF / ATTN_TILE_SUM_OFF), and the query's output row
 * oh is started for the tile (zeroed on the first, times the factor after). The max is taken over the
 * scores in position order, as the one-pass kernels do while scoring. Shared by ref/kv-tiled.ts, whose
 * tile differs only in how scores and values are read.
 */
// @ts-ignore: decorator
@inline export function softmaxTile(ws: usize, c: i32, first: bool, last: bool, oh: usize, headDim: i32): void {
  const sc = ws + ATTN_TILE_SCORES_OFF;
  const mAt = ws + ATTN_TILE_MAX_OFF, lAt = ws + ATTN_TILE_SUM_OFF;
  const mPrev: f32 = first ? -Infinity : load<f32>(mAt);
  let m = mPrev;
  for (let j = 0; j < c; j++) m = max(m, load<f32>(sc + (<usize>j << 2)));
  const alpha: f32 = first ? 1 : expf32(mPrev - m);
  let l: f64 = first ? 0 : load<f64>(lAt) * <f64>alpha;
  for (let j = 0; j < c; j++) {
    const e = expf32(load<f32>(sc + (<usize>j << 2)) - m);
    store<f32>(sc + (<usize>j << 2), e);
    l += e;
  }
  store<f32>(mAt, m);
  store<f64>(lAt, l);
  let factor = alpha;
  if (last) {
    const inv = f32(1.0 / l);
    factor = alpha * inv;
    for (let j = 0; j < c; j++) store<f32>(sc + (<usize>j << 2), load<f32>(sc + (<usize>j << 2)) * inv);
  }
  for (let i = 0; i < headDim; i++) {
    const o = <usize>i << 2;
    store<f32>(oh + o, first ? 0 : load<f32>(oh + o) * factor);
  }
}

/**
 * Arguments as refAttention's (ref/attention.ts), except scratch: ATTN_TILE_SCRATCH_BYTES per
 * concurrent call. out rows of the heads taken are written; nothing else is.
 */
export function refAttentionTiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = <usize>kvStride << 2;
  const sc = scratch + ATTN_TILE_SCORES_OFF;
  for (let h = headStart; h < headEnd; h++) {
    const kvOff = (<usize>(h / group) * headDim) << 2;
    for (let t = 0; t < nTok; t++) {
      const n = pos0 + t + 1;
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      for (let s0 = 0; s0 < n; s0 += ATTN_TILE_K) {
        const c = min(ATTN_TILE_K, n - s0);
        for (let j = 0; j < c; j++) {
          store<f32>(sc + (<usize>j << 2), dotQK(qh, k + <usize>(s0 + j) * kvRow + kvOff, headDim) * scale);
        }
        softmaxTile(scratch, c, s0 == 0, s0 + c == n, oh, headDim);
        for (let j = 0; j < c; j++) {
          const p = load<f32>(sc + (<usize>j << 2));
          const vp = v + <usize>(s0 + j) * kvRow + kvOff;
          for (let i = 0; i < headDim; i++) {
            const o = <usize>i << 2;
            store<f32>(oh + o, load<f32>(oh + o) + p * load<f32>(vp + o));
          }
        }
      }
    }
  }
}
