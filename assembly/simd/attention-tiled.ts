// SIMD128 tiled causal grouped-query attention over an f32 KV cache, same signature, contract and bits
// as ref/attention-tiled.ts (where the recurrence and the rule that keeps the one-pass kernel's bits
// are stated). The query rows of one KV head are its group's (token, head) pairs, token-major, taken
// ATTN_TILE_Q at a time against ATTN_TILE_K keys at a time: each key row is loaded once for the four
// rows' dot products and each value row once for their weighted sums, kept in registers across the
// key tile (so decode, one token, shares the loads among the heads of a group). Every output element
// still takes its products in position order, so per row the bits are the twin's, however rows are
// grouped; the keys all four rows see go four rows at a time, the diagonal's staircase row by row.
import { expf32 } from '../ref/expf';
import {
  ATTN_TILE_FACTOR_OFF, ATTN_TILE_K, ATTN_TILE_MAX_OFF, ATTN_TILE_Q, ATTN_TILE_SCORES_OFF, ATTN_TILE_SUM_OFF,
} from '../ref/attention-tiled';
import { dotQKx4 } from './attention';
import { expShiftedInPlace } from './expf';
import { hsumF32 } from './lanes';
import { accumulate4, START_CONTINUE, START_SCALED, START_ZERO, startLanes, startScalar } from './tile-values';

/** The four dots' tails (dims d4..headDim) after their lane sums, scaled, stored at column j of sc's rows. */
// @ts-ignore: decorator
@inline function storeScores4(q0: usize, q1: usize, q2: usize, q3: usize, kp: usize, a0: v128, a1: v128, a2: v128, a3: v128, headDim: i32, d4: i32, scale: f32, at: usize): void {
  const rowBytes = <usize>ATTN_TILE_K << 2;
  let d0 = hsumF32(a0), d1 = hsumF32(a1), d2 = hsumF32(a2), d3 = hsumF32(a3);
  for (let i = d4; i < headDim; i++) {
    const o = <usize>i << 2;
    const kx = load<f32>(kp + o);
    d0 += load<f32>(q0 + o) * kx;
    d1 += load<f32>(q1 + o) * kx;
    d2 += load<f32>(q2 + o) * kx;
    d3 += load<f32>(q3 + o) * kx;
  }
  store<f32>(at, d0 * scale);
  store<f32>(at + rowBytes, d1 * scale);
  store<f32>(at + 2 * rowBytes, d2 * scale);
  store<f32>(at + 3 * rowBytes, d3 * scale);
}

/** Scores of four query rows against keys [0, cnt) from kBase: two keys at a time, each query load shared. */
function scores4(q0: usize, q1: usize, q2: usize, q3: usize, kBase: usize, kvRow: usize, cnt: i32, headDim: i32, d4: i32, scale: f32, sc: usize): void {
  let j = 0;
  for (; j + 1 < cnt; j += 2) {
    const kp = kBase + <usize>j * kvRow, kq = kp + kvRow;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      const ka = v128.load(kp + o), kb = v128.load(kq + o);
      const x0 = v128.load(q0 + o), x1 = v128.load(q1 + o), x2 = v128.load(q2 + o), x3 = v128.load(q3 + o);
      a0 = f32x4.add(a0, f32x4.mul(x0, ka)); b0 = f32x4.add(b0, f32x4.mul(x0, kb));
      a1 = f32x4.add(a1, f32x4.mul(x1, ka)); b1 = f32x4.add(b1, f32x4.mul(x1, kb));
      a2 = f32x4.add(a2, f32x4.mul(x2, ka)); b2 = f32x4.add(b2, f32x4.mul(x2, kb));
      a3 = f32x4.add(a3, f32x4.mul(x3, ka)); b3 = f32x4.add(b3, f32x4.mul(x3, kb));
    }
    storeScores4(q0, q1, q2, q3, kp, a0, a1, a2, a3, headDim, d4, scale, sc + (<usize>j << 2));
    storeScores4(q0, q1, q2, q3, kq, b0, b1, b2, b3, headDim, d4, scale, sc + (<usize>(j + 1) << 2));
  }
  if (j < cnt) {
    const kp = kBase + <usize>j * kvRow;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      const kv = v128.load(kp + o);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(q0 + o), kv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(q1 + o), kv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(q2 + o), kv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(q3 + o), kv));
    }
    storeScores4(q0, q1, q2, q3, kp, a0, a1, a2, a3, headDim, d4, scale, sc + (<usize>j << 2));
  }
}

/**
 * The softmax step of one query on its c scores at sc (replaced by its weights e or e * inv): updates
 * its running max and sum in the workspace and returns the factor its output rows take first.
 */
export function softmaxStep(ws: usize, i: i32, sc: usize, c: i32, first: bool, last: bool): f32 {
  const mAt = ws + ATTN_TILE_MAX_OFF + (<usize>i << 2);
  const lAt = ws + ATTN_TILE_SUM_OFF + (<usize>i << 3);
  const mPrev = load<f32>(mAt);
  const c4 = c & ~3;
  let mv = f32x4.splat(mPrev);
  for (let j = 0; j < c4; j += 4) mv = f32x4.max(mv, v128.load(sc + (<usize>j << 2)));
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (let j = c4; j < c; j++) m = max(m, load<f32>(sc + (<usize>j << 2)));
  const alpha: f32 = first ? 1 : expf32(mPrev - m);
  let l: f64 = first ? 0 : load<f64>(lAt) * <f64>alpha;
  expShiftedInPlace(sc, c, m);
  for (let j = 0; j < c; j++) l += load<f32>(sc + (<usize>j << 2));
  store<f32>(mAt, m);
  store<f64>(lAt, l);
  if (!last) return alpha;
  const inv = f32(1.0 / l);
  const iv = f32x4.splat(inv);
  for (let j = 0; j < c4; j += 4) {
    const p = sc + (<usize>j << 2);
    v128.store(p, f32x4.mul(v128.load(p), iv));
  }
  for (let j = c4; j < c; j++) {
    const p = sc + (<usize>j << 2);
    store<f32>(p, load<f32>(p) * inv);
  }
  return alpha * inv;
}

/** One query: oh = start(oh) + sum over j in [j0, j1) of w[j] * v_j, 16 lanes of the row at a time. */
function accumulate1(oh: usize, w: usize, vBase: usize, kvRow: usize, j0: i32, j1: i32, headDim: i32, start: i32, factor: f32): void {
  const f = f32x4.splat(factor);
  const d16 = headDim & ~15, d4 = headDim & ~3;
  for (let d = 0; d < d16; d += 16) {
    const o = oh + (<usize>d << 2);
    let a0 = startLanes(o, start, f), a1 = startLanes(o + 16, start, f), a2 = startLanes(o + 32, start, f), a3 = startLanes(o + 48, start, f);
    for (let j = j0; j < j1; j++) {
      const p = v128.load32_splat(w + (<usize>j << 2));
      const vp = vBase + <usize>j * kvRow + (<usize>d << 2);
      a0 = f32x4.add(a0, f32x4.mul(p, v128.load(vp)));
      a1 = f32x4.add(a1, f32x4.mul(p, v128.load(vp + 16)));
      a2 = f32x4.add(a2, f32x4.mul(p, v128.load(vp + 32)));
      a3 = f32x4.add(a3, f32x4.mul(p, v128.load(vp + 48)));
    }
    v128.store(o, a0);
    v128.store(o + 16, a1);
    v128.store(o + 32, a2);
    v128.store(o + 48, a3);
  }
  for (let d = d16; d < d4; d += 4) {
    const o = oh + (<usize>d << 2);
    let a = startLanes(o, start, f);
    for (let j = j0; j < j1; j++) {
      a = f32x4.add(a, f32x4.mul(v128.load32_splat(w + (<usize>j << 2)), v128.load(vBase + <usize>j * kvRow + (<usize>d << 2))));
    }
    v128.store(o, a);
  }
  for (let d = d4; d < headDim; d++) {
    const o = oh + (<usize>d << 2);
    let a = startScalar(o, start, factor);
    for (let j = j0; j < j1; j++) a += load<f32>(w + (<usize>j << 2)) * load<f32>(vBase + <usize>j * kvRow + (<usize>d << 2));
    store<f32>(o, a);
  }
}

/** tile-values.ts's accumulate4 over f32 value rows, out of line: one copy for the kernel's two tile paths. */
function accumulate4F32(o0: usize, o1: usize, o2: usize, o3: usize, w: usize, ws: usize, vBase: usize, kvRow: usize, cnt: i32, headDim: i32, start: i32): void {
  accumulate4<f32>(o0, o1, o2, o3, w, ws, vBase, kvRow, cnt, headDim, start);
}

/** Byte offset of row r's head vector among the rows (t, h) of a head group: t = r / gh, h = hLo + r % gh. */
// @ts-ignore: decorator
@inline export function rowOffset(r: i32, gh: i32, hLo: i32, nHeads: i32, headDim: i32): usize {
  const t = r / gh;
  return (<usize>(t * nHeads + hLo + (r - t * gh)) * headDim) << 2;
}

export function simdAttentionTiled(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = <usize>kvStride << 2;
  const wRow = <usize>ATTN_TILE_K << 2;
  const d4 = headDim & ~3;
  const sc = scratch + ATTN_TILE_SCORES_OFF;
  // Query rows are the (token, head) pairs of one KV head's group, token-major, ATTN_TILE_Q at a time:
  // the heads sharing keys and values (and the consecutive tokens) read each key and value row once.
  for (let g = headStart / group; g * group < headEnd; g++) {
    const hLo = max(headStart, g * group), gh = min(headEnd, (g + 1) * group) - hLo;
    const kvOff = (<usize>(g * headDim)) << 2;
    const nRows = nTok * gh;
    for (let r0 = 0; r0 < nRows; r0 += ATTN_TILE_Q) {
      const nq = min(ATTN_TILE_Q, nRows - r0);
      const n0 = pos0 + r0 / gh + 1; // keys the tile's first row sees; rows are in order of position
      const nLast = pos0 + (r0 + nq - 1) / gh + 1;
      const rq0 = rowOffset(r0, gh, hLo, nHeads, headDim);
      const rq1 = nq > 1 ? rowOffset(r0 + 1, gh, hLo, nHeads, headDim) : rq0;
      const rq2 = nq > 2 ? rowOffset(r0 + 2, gh, hLo, nHeads, headDim) : rq0;
      const rq3 = nq > 3 ? rowOffset(r0 + 3, gh, hLo, nHeads, headDim) : rq0;
      for (let s0 = 0; s0 < nLast; s0 += ATTN_TILE_K) {
        const kBase = k + <usize>s0 * kvRow + kvOff;
        const vBase = v + <usize>s0 * kvRow + kvOff;
        const first = s0 == 0;
        const c0 = max(0, min(ATTN_TILE_K, n0 - s0));
        // Scores: the keys all rows see four rows at a time, the rest (a diagonal staircase) one by one.
        let jFrom = 0;
        if (nq == ATTN_TILE_Q) {
          scores4(q + rq0, q + rq1, q + rq2, q + rq3, kBase, kvRow, c0, headDim, d4, scale, sc);
          jFrom = c0;
        }
        for (let i = 0; i < nq; i++) {
          const ci = min(ATTN_TILE_K, pos0 + (r0 + i) / gh + 1 - s0);
          const si = sc + <usize>i * wRow;
          const qi = q + (i == 0 ? rq0 : i == 1 ? rq1 : i == 2 ? rq2 : rq3);
          for (let j = jFrom; j < ci; j++) {
            store<f32>(si + (<usize>j << 2), dotQKx4(qi, kBase + <usize>j * kvRow, headDim, d4) * scale);
          }
        }
        // Softmax step per row (a row with no key in this tile keeps its output: factor 1).
        for (let i = 0; i < nq; i++) {
          const ni = pos0 + (r0 + i) / gh + 1;
          const ci = min(ATTN_TILE_K, ni - s0);
          const fAt = scratch + ATTN_TILE_FACTOR_OFF + (<usize>i << 2);
          if (first) store<f32>(scratch + ATTN_TILE_MAX_OFF + (<usize>i << 2), -Infinity);
          store<f32>(fAt, ci > 0 ? softmaxStep(scratch, i, sc + <usize>i * wRow, ci, first, s0 + ci == ni) : 1);
        }
        // Weighted values, in position order per output element.
        const start = first ? START_ZERO : START_SCALED;
        if (nq == ATTN_TILE_Q) {
          accumulate4F32(out + rq0, out + rq1, out + rq2, out + rq3, sc, scratch, vBase, kvRow, c0, headDim, start);
          for (let i = 0; i < nq; i++) {
            const ci = min(ATTN_TILE_K, pos0 + (r0 + i) / gh + 1 - s0);
            const oi = out + (i == 0 ? rq0 : i == 1 ? rq1 : i == 2 ? rq2 : rq3);
            if (ci > c0) accumulate1(oi, sc + <usize>i * wRow, vBase, kvRow, c0, ci, headDim, START_CONTINUE, 1);
          }
        } else {
          for (let i = 0; i < nq; i++) {
            const ci = min(ATTN_TILE_K, pos0 + (r0 + i) / gh + 1 - s0);
            const oi = out + (i == 0 ? rq0 : i == 1 ? rq1 : i == 2 ? rq2 : rq3);
            if (ci > 0) accumulate1(oi, sc + <usize>i * wRow, vBase, kvRow, 0, ci, headDim, start, load<f32>(scratch + ATTN_TILE_FACTOR_OFF + (<usize>i << 2)));
          }
        }
      }
    }
  }
}
