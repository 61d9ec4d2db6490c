// Scalar twins of the reduced-precision KV cache kernels: storing f32 key/value rows into an f16 or
// int8 cache, and causal grouped-query attention reading such a cache. The math is that of
// ref/attention.ts (q.k in four-lane order, softmax in f32 with its sum in f64, f32 weighted sum);
// only the cache rows are converted on the fly. Bit-identical with simd/kv.ts.
//
// Cache row layouts, one row per position (kvStride = nKVHeads * headDim values):
//   f16 : kvStride IEEE half values, heads side by side                       (2 * kvStride bytes)
//   int8: 4 * nKVHeads bytes of scales, then kvStride 8-bit values, heads side by side
//                                                                             (4 * nKVHeads + kvStride bytes)
// int8 values: x of head h is stored as q = round(x / d_h) (i8), d_h = max|x of head h| / 127 (ties
// to even) in the row's f32 scale of head h, and read back as q * d_h: one scale per token and head.
//
// int8 keys are quantized per channel instead, KIVI-style (Liu et al. 2024): a token's key has a few
// channels far larger than the rest (RoPE's slow pairs carrying a near-constant offset), so one scale
// per token and head leaves a step too coarse for q.k (on stories260K it moves logits by 0.6). Keys go
// in blocks of G = headDim positions; in a complete block, channel c (head h, dim i) is stored as
// u = round((x - m_c) / d_c) (u8, clamped to 0..255), m_c = the largest f16 <= the block's min of
// channel c and d_c = the smallest f16 >= (max - m_c) / 255, and read back as m_c + d_c * u. The 4 * nKVHeads
// bytes at the start of block row i hold (d, m) as two f16 for dim i of each head h, at 4 * h: so a
// block's G rows hold exactly its kvStride channel pairs, and rows stay the size of value rows.
// Positions past the last complete block (fewer than G, the most recent ones) wait in a key tail of f16
// rows just before row 0 (at k - int8KeyTailBytes) and are quantized once their block fills: the
// newest keys keep f16 precision, and a block's range is known before it is quantized. The tail has
// two halves of G rows. Before a batch of positions [pos, end), the open block B = pos - pos % G has
// its held positions in the first half (row s - B). The batch's positions in block B go there too;
// later ones go to the second half (row G + s % G), where each block they fill is quantized from,
// so that the last, partial block [end - end % G, end) is in the second half when the batch completed
// block B, and in the first one otherwise. The cache moves it to the first half after the batch
// (kv-cache.ts); until then held rows are never overwritten, so a batch abandoned half-way leaves
// the cache as it was.
import { expf32 } from './expf';
import { f16ToF32, f32ToF16 } from '../half';

/** Bytes of one int8 cache row. */
// @ts-ignore: decorator
@inline export function int8RowBytes(nKVHeads: i32, headDim: i32): usize {
  return (<usize>nKVHeads << 2) + <usize>(nKVHeads * headDim);
}

/** nTok rows of cols f32 at src to f16 cache rows at dst (round to nearest even). */
export function refKvStoreF16(src: usize, dst: usize, cols: i32, nTok: i32): void {
  const n = nTok * cols;
  for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16(load<f32>(src + (<usize>i << 2))));
}

/** Bytes of the int8 key tail that precedes row 0 of a key cache: 2 G = 2 headDim rows of f16. */
// @ts-ignore: decorator
@inline export function int8KeyTailBytes(nKVHeads: i32, headDim: i32): usize {
  return (<usize>headDim * <usize>(nKVHeads * headDim)) << 2;
}

/**
 * Start of the key block holding position `pos` (blocks of headDim positions); for a count of held
 * positions, how many of them lie in complete blocks.
 */
// @ts-ignore: decorator
@inline export function int8KeyBlockStart(pos: i32, headDim: i32): i32 {
  return pos - pos % headDim;
}

/**
 * Tail row 0 of the last, partial key block of a cache holding `held` positions after a batch that
 * started at pos0 (the layout at the top).
 */
// @ts-ignore: decorator
@inline export function int8KeyTailRows(k: usize, nKVHeads: i32, headDim: i32, pos0: i32, held: i32): usize {
  const tail = k - int8KeyTailBytes(nKVHeads, headDim);
  const completedOpenBlock = int8KeyBlockStart(held, headDim) > int8KeyBlockStart(pos0, headDim);
  return completedOpenBlock ? tail + ((<usize>headDim * <usize>(nKVHeads * headDim)) << 1) : tail;
}

/**
 * Stores the f32 keys of positions pos.. (nTok rows of nKVHeads*headDim at src) into the int8 key
 * cache whose row 0 is at k: each key goes to its f16 tail row, and each block filled is quantized
 * into its rows (tail halves at the top). Positions < pos must be held, the open block's in the
 * tail's first half.
 */
export function refKvStoreInt8Keys(src: usize, k: usize, nKVHeads: i32, headDim: i32, pos: i32, nTok: i32): void {
  const kvDim = nKVHeads * headDim;
  const tail = k - int8KeyTailBytes(nKVHeads, headDim);
  const tailRow = <usize>kvDim << 1;
  const second = tail + <usize>headDim * tailRow;
  const rowBytes = int8RowBytes(nKVHeads, headDim);
  const openEnd = int8KeyBlockStart(pos, headDim) + headDim;
  for (let t = 0; t < nTok; t++) {
    const p = pos + t;
    const j = p % headDim;
    const half = p < openEnd ? tail : second;
    const x = src + ((<usize>(t * kvDim)) << 2);
    const dst = half + <usize>j * tailRow;
    for (let c = 0; c < kvDim; c++) store<u16>(dst + (<usize>c << 1), <u16>f32ToF16(load<f32>(x + (<usize>c << 2))));
    if (j == headDim - 1) quantizeKeyBlock(half, k + <usize>(p - j) * rowBytes, nKVHeads, headDim);
  }
}

/** Bits of the largest f16 <= x (finite x): a block's minimum, so that no code falls below 0. */
function f16AtMost(x: f32): u32 {
  const h = f32ToF16(x);
  if (f16ToF32(h) <= x) return h;
  if ((h & 0x7fff) == 0) return 0x8001;
  return (h & 0x8000) != 0 ? h + 1 : h - 1;
}

/** Bits of the smallest f16 >= x (x >= 0): a block's step, so that no code rises above 255. */
function f16AtLeast(x: f32): u32 {
  const h = f32ToF16(x);
  return f16ToF32(h) >= x ? h : h + 1;
}

/** A full tail half (G f16 rows) to the block of int8 rows at blk (layout at the top). */
function quantizeKeyBlock(tail: usize, blk: usize, nKVHeads: i32, headDim: i32): void {
  const kvDim = nKVHeads * headDim;
  const tailRow = <usize>kvDim << 1;
  const rowBytes = int8RowBytes(nKVHeads, headDim);
  const qsOff = <usize>nKVHeads << 2;
  for (let h = 0; h < nKVHeads; h++) {
    for (let i = 0; i < headDim; i++) {
      const c = h * headDim + i;
      const col = tail + (<usize>c << 1);
      let lo: f32 = Infinity, hi: f32 = -Infinity;
      for (let j = 0; j < headDim; j++) {
        const x = f16ToF32(load<u16>(col + <usize>j * tailRow));
        lo = min(lo, x);
        hi = max(hi, x);
      }
      const mh = f16AtMost(lo);
      const m = f16ToF32(mh);
      const dh = f16AtLeast((hi - m) / 255);
      const d = f16ToF32(dh);
      const id: f32 = d != 0 ? 1 / d : 0;
      const param = blk + <usize>i * rowBytes + (<usize>h << 2);
      store<u16>(param, <u16>dh);
      store<u16>(param + 2, <u16>mh);
      for (let j = 0; j < headDim; j++) {
        const u = nearest((f16ToF32(load<u16>(col + <usize>j * tailRow)) - m) * id);
        store<u8>(blk + <usize>j * rowBytes + qsOff + <usize>c, <u8>i32(min<f32>(max<f32>(u, 0), 255)));
      }
    }
  }
}

/**
 * For the key block at blk and kv head kvh: qd[i] = q[i] * d_i at qd (headDim f32), and returns
 * sum_i q[i] * m_i in four-lane order; a key's q.k is then that plus qd.u (four-lane order).
 */
export function keyBlockQuery(qh: usize, blk: usize, rowBytes: usize, kvh: i32, headDim: i32, qd: usize): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const d4 = headDim & ~3;
  const param = blk + (<usize>kvh << 2);
  for (let i = 0; i < headDim; i++) {
    const pi = param + <usize>i * rowBytes;
    const qi = load<f32>(qh + (<usize>i << 2));
    store<f32>(qd + (<usize>i << 2), qi * f16ToF32(load<u16>(pi)));
    const qm = qi * f16ToF32(load<u16>(pi + 2));
    if (i >= d4) continue;
    const lane = i & 3;
    if (lane == 0) l0 += qm;
    else if (lane == 1) l1 += qm;
    else if (lane == 2) l2 += qm;
    else l3 += qm;
  }
  let bias = (l0 + l1) + (l2 + l3);
  for (let i = d4; i < headDim; i++) bias += load<f32>(qh + (<usize>i << 2)) * f16ToF32(load<u16>(param + <usize>i * rowBytes + 2));
  return bias;
}

/** nTok rows of nKVHeads*headDim f32 at src to int8 cache rows at dst (one scale per head). */
export function refKvStoreInt8(src: usize, dst: usize, nKVHeads: i32, headDim: i32, nTok: i32): void {
  const rowBytes = int8RowBytes(nKVHeads, headDim);
  for (let t = 0; t < nTok; t++) {
    const row = dst + <usize>t * rowBytes;
    const qs = row + (<usize>nKVHeads << 2);
    for (let h = 0; h < nKVHeads; h++) {
      const x = src + ((<usize>(t * nKVHeads + h) * headDim) << 2);
      let amax: f32 = 0;
      for (let i = 0; i < headDim; i++) amax = max(amax, abs(load<f32>(x + (<usize>i << 2))));
      const d = amax / 127;
      const id: f32 = d != 0 ? 1 / d : 0;
      store<f32>(row + (<usize>h << 2), d);
      const qh = qs + <usize>(h * headDim);
      for (let i = 0; i < headDim; i++) store<i8>(qh + i, <i8>i32(nearest(load<f32>(x + (<usize>i << 2)) * id)));
    }
  }
}

/** q.k over headDim with k in f16, in the four-lane order of ref/attention.ts. */
export function dotF16(qh: usize, kp: usize, headDim: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const d4 = headDim & ~3;
  for (let i = 0; i < d4; i += 4) {
    const qi = qh + (<usize>i << 2), ki = kp + (<usize>i << 1);
    l0 += load<f32>(qi) * f16ToF32(load<u16>(ki));
    l1 += load<f32>(qi + 4) * f16ToF32(load<u16>(ki + 2));
    l2 += load<f32>(qi + 8) * f16ToF32(load<u16>(ki + 4));
    l3 += load<f32>(qi + 12) * f16ToF32(load<u16>(ki + 6));
  }
  let dot = (l0 + l1) + (l2 + l3);
  for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * f16ToF32(load<u16>(kp + (<usize>i << 1)));
  return dot;
}

/** qd.u over headDim with u in u8, in the four-lane order. */
export function dotU8(qd: usize, up: usize, headDim: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const d4 = headDim & ~3;
  for (let i = 0; i < d4; i += 4) {
    const qi = qd + (<usize>i << 2), ui = up + <usize>i;
    l0 += load<f32>(qi) * <f32>load<u8>(ui);
    l1 += load<f32>(qi + 4) * <f32>load<u8>(ui + 1);
    l2 += load<f32>(qi + 8) * <f32>load<u8>(ui + 2);
    l3 += load<f32>(qi + 12) * <f32>load<u8>(ui + 3);
  }
  let dot = (l0 + l1) + (l2 + l3);
  for (let i = d4; i < headDim; i++) dot += load<f32>(qd + (<usize>i << 2)) * <f32>load<u8>(up + i);
  return dot;
}

/** Scores of qh against `count` f16 key rows (kp, then every rowBytes) into scores; returns max(mx, them). */
function scoreF16Keys(qh: usize, kp: usize, rowBytes: usize, count: i32, headDim: i32, scale: f32, scores: usize, mx: f32): f32 {
  for (let s = 0; s < count; s++) {
    const sc = dotF16(qh, kp + <usize>s * rowBytes, headDim) * scale;
    store<f32>(scores + (<usize>s << 2), sc);
    mx = max(mx, sc);
  }
  return mx;
}

/**
 * Scores of qh against positions [0, count) of the complete int8 key blocks from row 0 at k, kv head
 * kvh (its codes at codes in a row), into scores; returns max(mx, them). qd: headDim f32 of the
 * caller's, for q scaled by a block's steps.
 */
function scoreKeyBlocks(qh: usize, k: usize, rowBytes: usize, kvh: i32, codes: usize, count: i32, headDim: i32, scale: f32, scores: usize, qd: usize, mx: f32): f32 {
  for (let b = 0; b < count; b += headDim) {
    const blk = k + <usize>b * rowBytes;
    const bias = keyBlockQuery(qh, blk, rowBytes, kvh, headDim, qd);
    const e = min(count, b + headDim);
    for (let s = b; s < e; s++) {
      const sc = (bias + dotU8(qd, k + <usize>s * rowBytes + codes, headDim)) * scale;
      store<f32>(scores + (<usize>s << 2), sc);
      mx = max(mx, sc);
    }
  }
  return mx;
}
/**
 * Softmax of the n scores at scratch, in place, left unnormalised (exp(s - max)); returns 1 / sum
 * (sum in f64, position order), which the caller folds into each probability.
 */
function softmaxUnnormalised(scratch: usize, n: i32, mx: f32): f32 {
  let sum: f64 = 0;
  for (let s = 0; s < n; s++) {
    const e = expf32(load<f32>(scratch + (<usize>s << 2)) - mx);
    store<f32>(scratch + (<usize>s << 2), e);
    sum += e;
  }
  return f32(1.0 / sum);
}

/**
 * Causal GQA over an f16 cache (T = u16) or an int8 one (T = i8), layouts at the top; arguments as
 * ref/attention.ts's refAttention, except that for int8, k is key row 0 with the key tail just before
 * it, and the cache holds pos0 + nTok positions: complete key blocks, then the tail. While scoring, a
 * query head's out row holds q scaled by the current key block's steps (int8).
 */
// @ts-ignore: decorator
@inline function attendKv<T>(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const int8 = sizeof<T>() == 1;
  const group = nHeads / nKVHeads;
  const kvRow = int8 ? int8RowBytes(nKVHeads, headDim) : <usize>kvStride << 1;
  const complete = int8 ? int8KeyBlockStart(pos0 + nTok, headDim) : 0;
  const tail = int8 ? int8KeyTailRows(k, nKVHeads, headDim, pos0, pos0 + nTok) : 0;
  const tailRow = <usize>(nKVHeads * headDim) << 1;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = headStart; h < headEnd; h++) {
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      const kvh = h / group;
      let mx: f32 = -Infinity;
      if (int8) {
        const codes = (<usize>nKVHeads << 2) + <usize>(kvh * headDim);
        const blocked = min(n, complete);
        mx = scoreKeyBlocks(qh, k, kvRow, kvh, codes, blocked, headDim, scale, scratch, oh, mx);
        mx = scoreF16Keys(qh, tail + ((<usize>(kvh * headDim)) << 1), tailRow, n - blocked, headDim, scale, scratch + (<usize>blocked << 2), mx);
      } else {
        mx = scoreF16Keys(qh, k + ((<usize>(kvh * headDim)) << 1), kvRow, n, headDim, scale, scratch, mx);
      }
      const inv = softmaxUnnormalised(scratch, n, mx);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      if (int8) accumulateInt8Values(oh, v, <usize>kvh << 2, (<usize>nKVHeads << 2) + <usize>(kvh * headDim), kvRow, scratch, inv, n, headDim);
      else accumulateF16Values(oh, v + ((<usize>(kvh * headDim)) << 1), kvRow, scratch, inv, n, headDim);
    }
  }
}

/** oh += sum over the n positions of p_s * (f16 value row s at vp + s * rowBytes), p_s = scores[s] * inv. */
function accumulateF16Values(oh: usize, vp: usize, rowBytes: usize, scores: usize, inv: f32, n: i32, headDim: i32): void {
  for (let s = 0; s < n; s++) {
    const p = load<f32>(scores + (<usize>s << 2)) * inv;
    const row = vp + <usize>s * rowBytes;
    for (let i = 0; i < headDim; i++) {
      const o = <usize>i << 2;
      store<f32>(oh + o, load<f32>(oh + o) + p * f16ToF32(load<u16>(row + (<usize>i << 1))));
    }
  }
}

/**
 * oh += sum over the n positions of p_s * d_s * (int8 values), p_s = scores[s] * inv: row s at
 * v + s * rowBytes, its scale d_s scaleOff bytes in, its codes codesOff bytes in.
 */
function accumulateInt8Values(oh: usize, v: usize, scaleOff: usize, codesOff: usize, rowBytes: usize, scores: usize, inv: f32, n: i32, headDim: i32): void {
  for (let s = 0; s < n; s++) {
    const row = v + <usize>s * rowBytes;
    const pd = load<f32>(scores + (<usize>s << 2)) * inv * load<f32>(row + scaleOff);
    const vp = row + codesOff;
    for (let i = 0; i < headDim; i++) {
      const o = <usize>i << 2;
      store<f32>(oh + o, load<f32>(oh + o) + pd * <f32>load<i8>(vp + i));
    }
  }
}

/** Attention over an f16 cache; arguments as ref/attention.ts's refAttention. */
export function refAttentionKvF16(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKv<u16>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

/** Attention over an int8 cache (layouts at the top; k = key row 0, the key tail before it); arguments as refAttention's. */
export function refAttentionKvInt8(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKv<i8>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}
