// SIMD128 versions of the reduced-precision KV cache kernels of ref/kv.ts, same signatures and row
// layouts: q.k and the weighted sum of values on f32x4 (cache lanes widened to f32 exactly), exps on
// four lanes with the twin of the scalar exp, the softmax sum in f64 in position order. Bit-identical
// with the scalar twins. (The f16 store is O(row) work and stays scalar in every build.)
import { loadF16 } from '../half';
import { expf32 } from '../ref/expf';
import { int8RowBytes } from '../ref/kv';
import { expF32x4 } from './expf';
import { halfLanesToF32, hsumF32 } from './lanes';

/** Four int8 at p as f32 lanes. */
// @ts-ignore: decorator
@inline function int8x4ToF32(p: usize): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p))));
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
 * exp(score - mx) of the n scores at scratch in place; returns 1 / their sum (f64, position order):
 * the same values as ref/kv.ts's softmaxUnnormalised.
 */
function softmaxUnnormalisedX4(scratch: usize, n: i32, mx: f32): f32 {
  const n4 = n & ~3;
  const mv = f32x4.splat(mx);
  for (let s = 0; s < n4; s += 4) {
    const p = scratch + (<usize>s << 2);
    v128.store(p, expF32x4(f32x4.sub(v128.load(p), mv)));
  }
  for (let s = n4; s < n; s++) {
    const p = scratch + (<usize>s << 2);
    store<f32>(p, expf32(load<f32>(p) - mx));
  }
  let sum: f64 = 0;
  for (let s = 0; s < n; s++) sum += load<f32>(scratch + (<usize>s << 2));
  return f32(1.0 / sum);
}

export function simdAttentionKvF16(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = <usize>kvStride << 1;
  const d4 = headDim & ~3;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = headStart; h < headEnd; h++) {
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      const kvOff = (<usize>(h / group) * headDim) << 1;
      let mx: f32 = -Infinity;
      for (let s = 0; s < n; s++) {
        const kp = k + <usize>s * kvRow + kvOff;
        let acc = f32x4.splat(0);
        for (let i = 0; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qh + (<usize>i << 2)), f16x4ToF32(kp + (<usize>i << 1))));
        let dot = hsumF32(acc);
        for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * loadF16(kp + (<usize>i << 1));
        const sc = dot * scale;
        store<f32>(scratch + (<usize>s << 2), sc);
        mx = max(mx, sc);
      }
      const inv = softmaxUnnormalisedX4(scratch, n, mx);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let s = 0; s < n; s++) {
        const p = load<f32>(scratch + (<usize>s << 2)) * inv;
        const pv = f32x4.splat(p);
        const vp = v + <usize>s * kvRow + kvOff;
        for (let i = 0; i < d4; i += 4) {
          const o = <usize>i << 2;
          v128.store(oh + o, f32x4.add(v128.load(oh + o), f32x4.mul(pv, f16x4ToF32(vp + (<usize>i << 1)))));
        }
        for (let i = d4; i < headDim; i++) {
          const o = <usize>i << 2;
          store<f32>(oh + o, load<f32>(oh + o) + p * loadF16(vp + (<usize>i << 1)));
        }
      }
    }
  }
}

export function simdAttentionKvInt8(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = int8RowBytes(nKVHeads, headDim);
  const qsOff = <usize>nKVHeads << 2;
  const d4 = headDim & ~3;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = headStart; h < headEnd; h++) {
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      const kvh = h / group;
      const scaleOff = <usize>kvh << 2;
      const kvOff = qsOff + <usize>(kvh * headDim);
      let mx: f32 = -Infinity;
      for (let s = 0; s < n; s++) {
        const row = k + <usize>s * kvRow;
        const kp = row + kvOff;
        let acc = f32x4.splat(0);
        for (let i = 0; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qh + (<usize>i << 2)), int8x4ToF32(kp + i)));
        let dot = hsumF32(acc);
        for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * <f32>load<i8>(kp + i);
        const sc = dot * load<f32>(row + scaleOff) * scale;
        store<f32>(scratch + (<usize>s << 2), sc);
        mx = max(mx, sc);
      }
      const inv = softmaxUnnormalisedX4(scratch, n, mx);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let s = 0; s < n; s++) {
        const row = v + <usize>s * kvRow;
        const pd = load<f32>(scratch + (<usize>s << 2)) * inv * load<f32>(row + scaleOff);
        const pv = f32x4.splat(pd);
        const vp = row + kvOff;
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
  }
}
