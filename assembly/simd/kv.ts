// SIMD128 versions of the reduced-precision KV cache kernels of ref/kv.ts, same signatures and row
// layouts: q.k and the weighted sum of values on f32x4 (cache lanes widened to f32 exactly), exps on
// four lanes with the twin of the scalar exp, the softmax sum in f64 in position order. Bit-identical
// with the scalar twins. (The f16 store and the int8 key store are O(row) work and stay scalar in every
// build.)
import { loadF16 } from '../half';
import { int8KeyBlockStart, int8KeyTailRows, int8RowBytes } from '../ref/kv';
import { expShiftedInPlace } from './expf';
import { halfLanesToF32, hsumF32 } from './lanes';

/** Four int8 at p as f32 lanes. */
// @ts-ignore: decorator
@inline function int8x4ToF32(p: usize): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p))));
}

/** Four u8 at p as f32 lanes. */
// @ts-ignore: decorator
@inline function u8x4ToF32(p: usize): v128 {
  return f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p))));
}

/** Four f16 at p as f32 lanes. */
// @ts-ignore: decorator
@inline function f16x4ToF32(p: usize): v128 {
  return halfLanesToF32(v128.load16x4_u(p));
}

export function simdKvStoreInt8(src: usize, dst: usize, nKVHeads: i32, headDim: i32, nTok: i32): void {
  const rowBytes = int8RowBytes(nKVHeads, headDim);
  const d4 = headDim & ~3;
  for (let t = 0; t < nTok; t++) {
    const row = dst + <usize>t * rowBytes;
    const qs = row + (<usize>nKVHeads << 2);
    for (let h = 0; h < nKVHeads; h++) {
      const x = src + ((<usize>(t * nKVHeads + h) * headDim) << 2);
      let mv = f32x4.splat(0);
      for (let i = 0; i < d4; i += 4) mv = f32x4.max(mv, f32x4.abs(v128.load(x + (<usize>i << 2))));
      let amax = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (let i = d4; i < headDim; i++) amax = max(amax, abs(load<f32>(x + (<usize>i << 2))));
      const d = amax / 127;
      const id: f32 = d != 0 ? 1 / d : 0;
      store<f32>(row + (<usize>h << 2), d);
      const qh = qs + <usize>(h * headDim);
      const idv = f32x4.splat(id);
      for (let i = 0; i < d4; i += 4) {
        const qi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + (<usize>i << 2)), idv)));
        const b = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(qi, qi), i16x8.splat(0));
        store<u32>(qh + i, i32x4.extract_lane(b, 0));
      }
      for (let i = d4; i < headDim; i++) store<i8>(qh + i, <i8>i32(nearest(load<f32>(x + (<usize>i << 2)) * id)));
    }
  }
}

/**
 * ref/kv.ts's keyBlockQuery on four lanes: qd[i] = q[i] * d_i at qd, returns sum_i q[i] * m_i (lane j
 * sums the dims i = j mod 4 of the whole groups of four, then the rest one by one): the same bits.
 */
export function keyBlockQueryX4(qh: usize, blk: usize, rowBytes: usize, kvh: i32, headDim: i32, qd: usize): f32 {
  const d4 = headDim & ~3;
  const param = blk + (<usize>kvh << 2);
  let acc = f32x4.splat(0);
  for (let i = 0; i < d4; i += 4) {
    const p0 = param + <usize>i * rowBytes;
    // (d, m) of dims i..i+3 as one u32 per lane: d in the low half, m in the high one.
    let dm = i32x4.splat(load<u32>(p0));
    dm = i32x4.replace_lane(dm, 1, load<u32>(p0 + rowBytes));
    dm = i32x4.replace_lane(dm, 2, load<u32>(p0 + 2 * rowBytes));
    dm = i32x4.replace_lane(dm, 3, load<u32>(p0 + 3 * rowBytes));
    const d = halfLanesToF32(v128.and(dm, i32x4.splat(0xffff)));
    const m = halfLanesToF32(i32x4.shr_u(dm, 16));
    const qv = v128.load(qh + (<usize>i << 2));
    v128.store(qd + (<usize>i << 2), f32x4.mul(qv, d));
    acc = f32x4.add(acc, f32x4.mul(qv, m));
  }
  let bias = hsumF32(acc);
  for (let i = d4; i < headDim; i++) {
    const pi = param + <usize>i * rowBytes;
    const qi = load<f32>(qh + (<usize>i << 2));
    store<f32>(qd + (<usize>i << 2), qi * loadF16(pi));
    bias += qi * loadF16(pi + 2);
  }
  return bias;
}

/**
 * exp(score - mx) of the n scores at scratch in place; returns 1 / their sum (f64, position order):
 * the same values as ref/kv.ts's softmaxUnnormalised.
 */
function softmaxUnnormalisedX4(scratch: usize, n: i32, mx: f32): f32 {
  expShiftedInPlace(scratch, n, mx);
  let sum: f64 = 0;
  for (let s = 0; s < n; s++) sum += load<f32>(scratch + (<usize>s << 2));
  return f32(1.0 / sum);
}

/** Scores of qh against `count` f16 key rows (kp, then every rowBytes) into scores; returns max(mx, them). */
function scoreF16KeysX4(qh: usize, kp: usize, rowBytes: usize, count: i32, headDim: i32, scale: f32, scores: usize, mx: f32): f32 {
  const d4 = headDim & ~3;
  for (let s = 0; s < count; s++) {
    const row = kp + <usize>s * rowBytes;
    let acc = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qh + (<usize>i << 2)), f16x4ToF32(row + (<usize>i << 1))));
    let dot = hsumF32(acc);
    for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * loadF16(row + (<usize>i << 1));
    const sc = dot * scale;
    store<f32>(scores + (<usize>s << 2), sc);
    mx = max(mx, sc);
  }
  return mx;
}

/** ref/kv.ts's scoreKeyBlocks: q scaled by each block's steps (at qd) dotted with the u8 codes. */
function scoreKeyBlocksX4(qh: usize, k: usize, rowBytes: usize, kvh: i32, codes: usize, count: i32, headDim: i32, scale: f32, scores: usize, qd: usize, mx: f32): f32 {
  const d4 = headDim & ~3;
  for (let b = 0; b < count; b += headDim) {
    const bias = keyBlockQueryX4(qh, k + <usize>b * rowBytes, rowBytes, kvh, headDim, qd);
    const e = min(count, b + headDim);
    for (let s = b; s < e; s++) {
      const up = k + <usize>s * rowBytes + codes;
      let acc = f32x4.splat(0);
      for (let i = 0; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qd + (<usize>i << 2)), u8x4ToF32(up + i)));
      let dot = hsumF32(acc);
      for (let i = d4; i < headDim; i++) dot += load<f32>(qd + (<usize>i << 2)) * <f32>load<u8>(up + i);
      const sc = (bias + dot) * scale;
      store<f32>(scores + (<usize>s << 2), sc);
      mx = max(mx, sc);
    }
  }
  return mx;
}

/** ref/kv.ts's accumulateF16Values on four lanes. */
function accumulateF16ValuesX4(oh: usize, vp: usize, rowBytes: usize, scores: usize, inv: f32, n: i32, headDim: i32): void {
  const d4 = headDim & ~3;
  for (let s = 0; s < n; s++) {
    const p = load<f32>(scores + (<usize>s << 2)) * inv;
    const pv = f32x4.splat(p);
    const row = vp + <usize>s * rowBytes;
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      v128.store(oh + o, f32x4.add(v128.load(oh + o), f32x4.mul(pv, f16x4ToF32(row + (<usize>i << 1)))));
    }
    for (let i = d4; i < headDim; i++) {
      const o = <usize>i << 2;
      store<f32>(oh + o, load<f32>(oh + o) + p * loadF16(row + (<usize>i << 1)));
    }
  }
}

/** ref/kv.ts's accumulateInt8Values on four lanes. */
function accumulateInt8ValuesX4(oh: usize, v: usize, scaleOff: usize, codesOff: usize, rowBytes: usize, scores: usize, inv: f32, n: i32, headDim: i32): void {
  const d4 = headDim & ~3;
  for (let s = 0; s < n; s++) {
    const row = v + <usize>s * rowBytes;
    const pd = load<f32>(scores + (<usize>s << 2)) * inv * load<f32>(row + scaleOff);
    const pv = f32x4.splat(pd);
    const vp = row + codesOff;
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      v128.store(oh + o, f32x4.add(v128.load(oh + o), f32x4.mul(pv, int8x4ToF32(vp + i))));
    }
    for (let i = d4; i < headDim; i++) {
      const o = <usize>i << 2;
      store<f32>(oh + o, load<f32>(oh + o) + pd * <f32>load<i8>(vp + i));
    }
  }
}

/** ref/kv.ts's attendKv (T = u16: f16 cache, T = i8: int8 cache) with the four-lane helpers above. */
// @ts-ignore: decorator
@inline function attendKvX4<T>(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
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
        mx = scoreKeyBlocksX4(qh, k, kvRow, kvh, codes, blocked, headDim, scale, scratch, oh, mx);
        mx = scoreF16KeysX4(qh, tail + ((<usize>(kvh * headDim)) << 1), tailRow, n - blocked, headDim, scale, scratch + (<usize>blocked << 2), mx);
      } else {
        mx = scoreF16KeysX4(qh, k + ((<usize>(kvh * headDim)) << 1), kvRow, n, headDim, scale, scratch, mx);
      }
      const inv = softmaxUnnormalisedX4(scratch, n, mx);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      if (int8) accumulateInt8ValuesX4(oh, v, <usize>kvh << 2, (<usize>nKVHeads << 2) + <usize>(kvh * headDim), kvRow, scratch, inv, n, headDim);
      else accumulateF16ValuesX4(oh, v + ((<usize>(kvh * headDim)) << 1), kvRow, scratch, inv, n, headDim);
    }
  }
}

export function simdAttentionKvF16(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKvX4<u16>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}

export function simdAttentionKvInt8(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  attendKvX4<i8>(q, k, v, out, nTok, nHeads, nKVHeads, headDim, kvStride, pos0, scale, scratch, headStart, headEnd);
}
