// SIMD128 tiled causal grouped-query attention over an f16 or int8 KV cache, same signature, contract
// and bits as ref/kv-tiled.ts: simd/attention-tiled.ts's tiling (ATTN_TILE_Q query rows of one KV
// head's group against ATTN_TILE_K keys, each key and value row loaded once for the four rows) with the
// cache lanes widened to f32 exactly as they are loaded (simd/tile-values.ts). int8 keys: a tile is
// scored a key block at a time (the blocks' q*d rows in the workspace), then the f16 key tail; int8
// values: each weight times its row's scale, then times the codes. Every output element takes its
// products in position order.
import { ATTN_TILE_FACTOR_OFF, ATTN_TILE_K, ATTN_TILE_MAX_OFF, ATTN_TILE_Q, ATTN_TILE_SCORES_OFF } from '../ref/attention-tiled';
import { int8KeyBlockStart, int8KeyTailRows, int8RowBytes } from '../ref/kv';
import { KV_TILE_BIAS_OFF, KV_TILE_QD_OFF } from '../ref/kv-tiled';
import { rowOffset, softmaxStep } from './attention-tiled';
import { hsumF32 } from './lanes';
import { keyBlockQueryX4 } from './kv';
import { accumulate4, lane1, lanes4, lanes8hi, lanes8lo, load8, START_CONTINUE, START_SCALED, START_ZERO, startLanes, startScalar } from './tile-values';

/** The four dots' tails after their lane sums, plus the rows' biases (int8 blocks), scaled, at column `at`. */
// @ts-ignore: decorator
@inline function storeScores4<K>(q0: usize, q1: usize, q2: usize, q3: usize, kp: usize, a0: v128, a1: v128, a2: v128, a3: v128, headDim: i32, d4: i32, scale: f32, biasAt: usize, at: usize): void {
  const rowBytes = <usize>ATTN_TILE_K << 2;
  let d0 = hsumF32(a0), d1 = hsumF32(a1), d2 = hsumF32(a2), d3 = hsumF32(a3);
  for (let i = d4; i < headDim; i++) {
    const o = <usize>i << 2;
    const kx = lane1<K>(kp, i);
    d0 += load<f32>(q0 + o) * kx;
    d1 += load<f32>(q1 + o) * kx;
    d2 += load<f32>(q2 + o) * kx;
    d3 += load<f32>(q3 + o) * kx;
  }
  if (biasAt != 0) {
    d0 = load<f32>(biasAt) + d0;
    d1 = load<f32>(biasAt + 4) + d1;
    d2 = load<f32>(biasAt + 8) + d2;
    d3 = load<f32>(biasAt + 12) + d3;
  }
  store<f32>(at, d0 * scale);
  store<f32>(at + rowBytes, d1 * scale);
  store<f32>(at + 2 * rowBytes, d2 * scale);
  store<f32>(at + 3 * rowBytes, d3 * scale);
}

/** Scores of four query rows against cnt key rows from kBase (every kvRow) into columns of sc; biasAt as storeScores4's. */
// @ts-ignore: decorator
@inline function scores4<K>(q0: usize, q1: usize, q2: usize, q3: usize, kBase: usize, kvRow: usize, cnt: i32, headDim: i32, d4: i32, scale: f32, biasAt: usize, sc: usize): void {
  for (let j = 0; j < cnt; j++) {
    const kp = kBase + <usize>j * kvRow;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      const kv = lanes4<K>(kp, i);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(q0 + o), kv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(q1 + o), kv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(q2 + o), kv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(q3 + o), kv));
    }
    storeScores4<K>(q0, q1, q2, q3, kp, a0, a1, a2, a3, headDim, d4, scale, biasAt, sc + (<usize>j << 2));
  }
}

/** One query row's scores against cnt key rows from kBase into si; bias added first when biasAt != 0. */
// @ts-ignore: decorator
@inline function scores1<K>(qi: usize, kBase: usize, kvRow: usize, cnt: i32, headDim: i32, d4: i32, scale: f32, biasAt: usize, si: usize): void {
  for (let j = 0; j < cnt; j++) {
    const kp = kBase + <usize>j * kvRow;
    let acc = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qi + (<usize>i << 2)), lanes4<K>(kp, i)));
    let dot = hsumF32(acc);
    for (let i = d4; i < headDim; i++) dot += load<f32>(qi + (<usize>i << 2)) * lane1<K>(kp, i);
    if (biasAt != 0) dot = load<f32>(biasAt) + dot;
    store<f32>(si + (<usize>j << 2), dot * scale);
  }
}

/**
 * Scores of the tile's nq rows (query or q*d rows r0q..r3q) against keys [a, b) of the tile, at kSeg
 * (key a) every kvRow: with rows4, the keys all rows see four rows at a time (rows past nq copies of
 * row 0), then each row's rest one by one.
 */
// @ts-ignore: decorator
@inline function scoreSegment<K>(r0q: usize, r1q: usize, r2q: usize, r3q: usize, nq: i32, rows4: bool, kSeg: usize, kvRow: usize, a: i32, b: i32, c0: i32, ci0: i32, ci1: i32, ci2: i32, ci3: i32, headDim: i32, d4: i32, scale: f32, biasAt: usize, sc: usize): void {
  const wRow = <usize>ATTN_TILE_K << 2;
  let jFrom = a;
  if (rows4) {
    const e4 = min(b, c0);
    if (e4 > a) scores4<K>(r0q, r1q, r2q, r3q, kSeg, kvRow, e4 - a, headDim, d4, scale, biasAt, sc + (<usize>a << 2));
    jFrom = max(a, e4);
  }
  for (let i = 0; i < nq; i++) {
    const ci = i == 0 ? ci0 : i == 1 ? ci1 : i == 2 ? ci2 : ci3;
    const e = min(b, ci);
    if (e <= jFrom) continue;
    const qi = i == 0 ? r0q : i == 1 ? r1q : i == 2 ? r2q : r3q;
    scores1<K>(qi, kSeg + <usize>(jFrom - a) * kvRow, kvRow, e - jFrom, headDim, d4, scale, biasAt != 0 ? biasAt + (<usize>i << 2) : 0, sc + <usize>i * wRow + (<usize>jFrom << 2));
  }
}

/** One query: oh = start(oh) + sum over j in [j0, j1) of w[j] * v_j (v_j row j from vBase, every kvRow). */
// @ts-ignore: decorator
@inline function accumulate1<V>(oh: usize, w: usize, vBase: usize, kvRow: usize, j0: i32, j1: i32, headDim: i32, start: i32, factor: f32): void {
  const f = f32x4.splat(factor);
  const d8 = headDim & ~7, d4 = headDim & ~3;
  for (let d = 0; d < d8; d += 8) {
    const o = oh + (<usize>d << 2);
    let a0 = startLanes(o, start, f), a1 = startLanes(o + 16, start, f);
    for (let j = j0; j < j1; j++) {
      const p = v128.load32_splat(w + (<usize>j << 2));
      const row = vBase + <usize>j * kvRow;
      const x = load8<V>(row, d);
      a0 = f32x4.add(a0, f32x4.mul(p, lanes8lo<V>(x)));
      a1 = f32x4.add(a1, f32x4.mul(p, lanes8hi<V>(x, row, d)));
    }
    v128.store(o, a0);
    v128.store(o + 16, a1);
  }
  for (let d = d8; d < d4; d += 4) {
    const o = oh + (<usize>d << 2);
    let a = startLanes(o, start, f);
    for (let j = j0; j < j1; j++) a = f32x4.add(a, f32x4.mul(v128.load32_splat(w + (<usize>j << 2)), lanes4<V>(vBase + <usize>j * kvRow, d)));
    v128.store(o, a);
  }
  for (let d = d4; d < headDim; d++) {
    const o = oh + (<usize>d << 2);
    let a = startScalar(o, start, factor);
    for (let j = j0; j < j1; j++) a += load<f32>(w + (<usize>j << 2)) * lane1<V>(vBase + <usize>j * kvRow, d);
    store<f32>(o, a);
  }
}

/** ref/kv-tiled.ts's attendKvTiled (T = u16: f16 cache, T = i8: int8 cache), four query rows at a time. */
// @ts-ignore: decorator
@inline function attendKvTiledX4<T>(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const int8 = sizeof<T>() == 1;
  const group = nHeads / nKVHeads;
  const kvRow = int8 ? int8RowBytes(nKVHeads, headDim) : <usize>kvStride << 1;
  const complete = int8 ? int8KeyBlockStart(pos0 + nTok, headDim) : 0;
  const tail = int8 ? int8KeyTailRows(k, nKVHeads, headDim, pos0, pos0 + nTok) : 0;
  const tailRow = <usize>(nKVHeads * headDim) << 1;
  const wRow = <usize>ATTN_TILE_K << 2;
  const d4 = headDim & ~3;
  const sc = scratch + ATTN_TILE_SCORES_OFF;
  const qdRow = (<usize>headDim) << 2;
  const qd = scratch + KV_TILE_QD_OFF;
  const biasAt = scratch + KV_TILE_BIAS_OFF;
  for (let g = headStart / group; g * group < headEnd; g++) {
    const hLo = max(headStart, g * group), gh = min(headEnd, (g + 1) * group) - hLo;
    const off16 = (<usize>(g * headDim)) << 1;
    const codes = (<usize>nKVHeads << 2) + <usize>(g * headDim);
    const nRows = nTok * gh;
    for (let r0 = 0; r0 < nRows; r0 += ATTN_TILE_Q) {
      const nq = min(ATTN_TILE_Q, nRows - r0);
      const n0 = pos0 + r0 / gh + 1; // keys the tile's first row sees; rows are in order of position
      const nLast = pos0 + (r0 + nq - 1) / gh + 1;
      const rq0 = rowOffset(r0, gh, hLo, nHeads, headDim);
      const rq1 = nq > 1 ? rowOffset(r0 + 1, gh, hLo, nHeads, headDim) : rq0;
      const rq2 = nq > 2 ? rowOffset(r0 + 2, gh, hLo, nHeads, headDim) : rq0;
      const rq3 = nq > 3 ? rowOffset(r0 + 3, gh, hLo, nHeads, headDim) : rq0;
      // Two or three rows go through the four-row loops too, padded with copies of row 0 whose outputs
      // go to a sink (the q*d rows, free once a tile is scored): each cache row is converted once for
      // them instead of once per row. Per row the bits are the same either way.
      const rows4 = nq > 1;
      const nScored = rows4 ? ATTN_TILE_Q : nq;
      const o1 = nq > 1 ? out + rq1 : qd + qdRow, o2 = nq > 2 ? out + rq2 : qd + 2 * qdRow, o3 = nq > 3 ? out + rq3 : qd + 3 * qdRow;
      for (let s0 = 0; s0 < nLast; s0 += ATTN_TILE_K) {
        const first = s0 == 0;
        const cMax = min(ATTN_TILE_K, nLast - s0);
        const c0 = max(0, min(ATTN_TILE_K, n0 - s0));
        const ci0 = min(ATTN_TILE_K, pos0 + r0 / gh + 1 - s0);
        const ci1 = nq > 1 ? min(ATTN_TILE_K, pos0 + (r0 + 1) / gh + 1 - s0) : 0;
        const ci2 = nq > 2 ? min(ATTN_TILE_K, pos0 + (r0 + 2) / gh + 1 - s0) : 0;
        const ci3 = nq > 3 ? min(ATTN_TILE_K, pos0 + (r0 + 3) / gh + 1 - s0) : 0;
        // Scores: f16 keys in one segment; int8 a key block at a time (q*d rows for the block), then the f16 tail.
        if (!int8) {
          scoreSegment<u16>(q + rq0, q + rq1, q + rq2, q + rq3, nq, rows4, k + <usize>s0 * kvRow + off16, kvRow, 0, cMax, c0, ci0, ci1, ci2, ci3, headDim, d4, scale, 0, sc);
        } else {
          for (let a = 0; a < cMax;) {
            const s = s0 + a;
            if (s < complete) {
              const blk = int8KeyBlockStart(s, headDim);
              const b = min(min(blk + headDim, complete) - s0, cMax);
              for (let i = 0; i < nScored; i++) {
                const ci = i >= nq ? ci0 : i == 0 ? ci0 : i == 1 ? ci1 : i == 2 ? ci2 : ci3;
                if (ci <= a) continue;
                const qi = q + (i == 0 ? rq0 : i == 1 ? rq1 : i == 2 ? rq2 : rq3);
                store<f32>(biasAt + (<usize>i << 2), keyBlockQueryX4(qi, k + <usize>blk * kvRow, kvRow, g, headDim, qd + <usize>i * qdRow));
              }
              scoreSegment<u8>(qd, qd + qdRow, qd + 2 * qdRow, qd + 3 * qdRow, nq, rows4, k + <usize>s * kvRow + codes, kvRow, a, b, c0, ci0, ci1, ci2, ci3, headDim, d4, scale, biasAt, sc);
              a = b;
            } else {
              scoreSegment<u16>(q + rq0, q + rq1, q + rq2, q + rq3, nq, rows4, tail + <usize>(s - complete) * tailRow + off16, tailRow, a, cMax, c0, ci0, ci1, ci2, ci3, headDim, d4, scale, 0, sc);
              a = cMax;
            }
          }
        }
        // Softmax step per row (a row with no key in this tile keeps its output: factor 1); int8 weights times their value row's scale.
        for (let i = 0; i < nq; i++) {
          const ci = i == 0 ? ci0 : i == 1 ? ci1 : i == 2 ? ci2 : ci3;
          const ni = s0 + ci;
          const fAt = scratch + ATTN_TILE_FACTOR_OFF + (<usize>i << 2);
          if (first) store<f32>(scratch + ATTN_TILE_MAX_OFF + (<usize>i << 2), -Infinity);
          const si = sc + <usize>i * wRow;
          store<f32>(fAt, ci > 0 ? softmaxStep(scratch, i, si, ci, first, ni == pos0 + (r0 + i) / gh + 1) : 1);
          if (int8) {
            const dAt = v + <usize>s0 * kvRow + (<usize>g << 2);
            for (let j = 0; j < ci; j++) store<f32>(si + (<usize>j << 2), load<f32>(si + (<usize>j << 2)) * load<f32>(dAt + <usize>j * kvRow));
          }
        }
        // Weighted values, in position order per output element.
        const vBase = v + <usize>s0 * kvRow + (int8 ? codes : off16);
        const start = first ? START_ZERO : START_SCALED;
        if (rows4) {
          for (let i = nq; i < ATTN_TILE_Q; i++) store<f32>(scratch + ATTN_TILE_FACTOR_OFF + (<usize>i << 2), 1);
          if (int8) accumulate4<i8>(out + rq0, o1, o2, o3, sc, scratch, vBase, kvRow, c0, headDim, start);
          else accumulate4<u16>(out + rq0, o1, o2, o3, sc, scratch, vBase, kvRow, c0, headDim, start);
          for (let i = 0; i < nq; i++) {
            const ci = i == 0 ? ci0 : i == 1 ? ci1 : i == 2 ? ci2 : ci3;
            const oi = out + (i == 0 ? rq0 : i == 1 ? rq1 : i == 2 ? rq2 : rq3);
            if (ci <= c0) continue;
            if (int8) accumulate1<i8>(oi, sc + <usize>i * wRow, vBase, kvRow, c0, ci, headDim, START_CONTINUE, 1);
            else accumulate1<u16>(oi, sc + <usize>i * wRow, vBase, kvRow, c0, ci, headDim, START_CONTINUE, 1);
          }
        } else {
          for (let i = 0; i < nq; i++) {
            const ci = i == 0 ? ci0 : i == 1 ? ci1 : i == 2 ? ci2 : ci3;
            if (ci <= 0) continue;
            const oi = out + (i == 0 ? rq0 : i == 1 ? rq1 : i == 2 ? rq2 : rq3);
            const factor = load<f32>(scratch + ATTN_TILE_FACTOR_OFF + (<usize>i << 2));
            if (int8) accumulate1<i8>(oi, sc + <usize>i * wRow, vBase, kvRow, 0, ci, headDim, start, factor);
            else accumulate1<u16>(oi, sc + <usize>i * wRow, vBase, kvRow, 0, ci, headDim, start, factor);
          }
        }
      }
    }
  }
}

export function simdAttentionKvF16Tiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKvTiledX4<u16>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

export function simdAttentionKvInt8Tiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKvTiledX4<i8>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}
