// Scalar twin of the tiled causal grouped-query attention over an f16 or int8 KV cache
// (simd/kv-tiled.ts): ref/attention-tiled.ts's recurrence (keys ATTN_TILE_K at a time, running max and
// f64 sum, normalisation folded into the last tile) with the cache rows of ref/kv.ts read and converted
// a tile at a time, so the workspace does not grow with the context.
//
// The rule that keeps today's bits: a query seeing at most ATTN_TILE_K keys gets exactly the operations
// of ref/kv.ts's one-pass kernels (its scores: f16 q.k, or int8 (q.m + (q*d).u) per key block and f16
// q.k over the key tail; its exps and f64 sum; p = e * (1 / sum); out = sum of p * v, or of (p * d) * u
// for int8 values, in position order from 0). Past that, per key tile the recurrence of
// ref/attention-tiled.ts with those scores, and values weighted by e (times d for int8) before the last
// tile. An int8 key block may straddle two tiles: each tile recomputes the block's q*d and q.m, the same
// values. A query's bits depend only on its position and the absolute tile boundaries.
import { f16ToF32 } from '../half';
import { ATTN_TILE_K, ATTN_TILE_Q, ATTN_TILE_SCORES_OFF, ATTN_TILE_SCRATCH_BYTES, softmaxTile } from './attention-tiled';
import { dotF16, dotU8, int8KeyBlockStart, int8KeyTailRows, int8RowBytes, keyBlockQuery } from './kv';

/** Workspace layout after attention-tiled.ts's: per query of a tile its key block's q.m (f32), then its q*d (headDim f32). */
export const KV_TILE_BIAS_OFF: usize = ATTN_TILE_SCRATCH_BYTES;
export const KV_TILE_QD_OFF: usize = KV_TILE_BIAS_OFF + (<usize>ATTN_TILE_Q << 2);

/** Bytes of one call's workspace: a few tiles and ATTN_TILE_Q query rows, independent of the context length. */
// @ts-ignore: decorator
@inline export function kvTiledScratchBytes(headDim: i32): usize {
  return KV_TILE_QD_OFF + ((<usize>(ATTN_TILE_Q * headDim)) << 2);
}

/**
 * Tiled attention over an f16 cache (T = u16) or an int8 one (T = i8); arguments as ref/kv.ts's
 * one-pass kernels, except scratch: kvTiledScratchBytes(headDim) per concurrent call.
 */
// @ts-ignore: decorator
@inline function attendKvTiled<T>(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const int8 = sizeof<T>() == 1;
  const group = nHeads / nKVHeads;
  const kvRow = int8 ? int8RowBytes(nKVHeads, headDim) : <usize>kvStride << 1;
  const complete = int8 ? int8KeyBlockStart(pos0 + nTok, headDim) : 0;
  const tail = int8 ? int8KeyTailRows(k, nKVHeads, headDim, pos0, pos0 + nTok) : 0;
  const tailRow = <usize>(nKVHeads * headDim) << 1;
  const sc = scratch + ATTN_TILE_SCORES_OFF;
  const qd = scratch + KV_TILE_QD_OFF;
  for (let h = headStart; h < headEnd; h++) {
    const kvh = h / group;
    const headOff16 = (<usize>(kvh * headDim)) << 1;
    const codes = (<usize>nKVHeads << 2) + <usize>(kvh * headDim);
    for (let t = 0; t < nTok; t++) {
      const n = pos0 + t + 1;
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      for (let s0 = 0; s0 < n; s0 += ATTN_TILE_K) {
        const c = min(ATTN_TILE_K, n - s0);
        let bias: f32 = 0;
        for (let j = 0; j < c; j++) {
          const s = s0 + j;
          let x: f32;
          if (!int8) {
            x = dotF16(qh, k + <usize>s * kvRow + headOff16, headDim) * scale;
          } else if (s < complete) {
            if (j == 0 || s % headDim == 0) bias = keyBlockQuery(qh, k + <usize>int8KeyBlockStart(s, headDim) * kvRow, kvRow, kvh, headDim, qd);
            x = (bias + dotU8(qd, k + <usize>s * kvRow + codes, headDim)) * scale;
          } else {
            x = dotF16(qh, tail + <usize>(s - complete) * tailRow + headOff16, headDim) * scale;
          }
          store<f32>(sc + (<usize>j << 2), x);
        }
        softmaxTile(scratch, c, s0 == 0, s0 + c == n, oh, headDim);
        for (let j = 0; j < c; j++) {
          const row = v + <usize>(s0 + j) * kvRow;
          const p = load<f32>(sc + (<usize>j << 2));
          if (int8) {
            const pd = p * load<f32>(row + (<usize>kvh << 2));
            const vp = row + codes;
            for (let i = 0; i < headDim; i++) {
              const o = <usize>i << 2;
              store<f32>(oh + o, load<f32>(oh + o) + pd * <f32>load<i8>(vp + i));
            }
          } else {
            const vp = row + headOff16;
            for (let i = 0; i < headDim; i++) {
              const o = <usize>i << 2;
              store<f32>(oh + o, load<f32>(oh + o) + p * f16ToF32(load<u16>(vp + (<usize>i << 1))));
            }
          }
        }
      }
    }
  }
}

/** Tiled attention over an f16 cache; arguments as ref/kv.ts's refAttentionKvF16, scratch kvTiledScratchBytes(headDim). */
export function refAttentionKvF16Tiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKvTiled<u16>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/** Tiled attention over an int8 cache; arguments as ref/kv.ts's refAttentionKvInt8, scratch kvTiledScratchBytes(headDim). */
export function refAttentionKvInt8Tiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKvTiled<i8>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}
