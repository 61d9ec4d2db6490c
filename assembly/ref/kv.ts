// Scalar twins of the reduced-precision KV cache kernels: storing f32 key/value rows into an f16 or
// int8 cache, and causal grouped-query attention reading such a cache. The math is that of
// ref/attention.ts (q.k in four-lane order, softmax in f32 with its sum in f64, f32 weighted sum);
// only the cache rows are converted on the fly. Bit-identical with simd/kv.ts.
//
// Cache row layouts, one row per position (kvStride = nKVHeads * headDim values):
//   f16 : kvStride IEEE half values, heads side by side                       (2 * kvStride bytes)
//   int8: nKVHeads f32 scales, then kvStride int8 values, heads side by side  (4 * nKVHeads + kvStride bytes)
// An int8 value x of head h is quantized as round(x / d_h), d_h = max|x of head h| / 127 (ties to even),
// and read back as q * d_h.
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
function dotF16(qh: usize, kp: usize, headDim: i32): f32 {
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

/** q.k over headDim with k in int8 (the scale applied by the caller), four-lane order. */
function dotInt8(qh: usize, kp: usize, headDim: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const d4 = headDim & ~3;
  for (let i = 0; i < d4; i += 4) {
    const qi = qh + (<usize>i << 2), ki = kp + <usize>i;
    l0 += load<f32>(qi) * <f32>load<i8>(ki);
    l1 += load<f32>(qi + 4) * <f32>load<i8>(ki + 1);
    l2 += load<f32>(qi + 8) * <f32>load<i8>(ki + 2);
    l3 += load<f32>(qi + 12) * <f32>load<i8>(ki + 3);
  }
  let dot = (l0 + l1) + (l2 + l3);
  for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * <f32>load<i8>(kp + i);
  return dot;
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

/** Attention over an f16 cache; arguments as ref/attention.ts's refAttention. */
export function refAttentionKvF16(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = <usize>kvStride << 1;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = headStart; h < headEnd; h++) {
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      const kvOff = (<usize>(h / group) * headDim) << 1;
      let mx: f32 = -Infinity;
      for (let s = 0; s < n; s++) {
        const sc = dotF16(qh, k + <usize>s * kvRow + kvOff, headDim) * scale;
        store<f32>(scratch + (<usize>s << 2), sc);
        mx = max(mx, sc);
      }
      const inv = softmaxUnnormalised(scratch, n, mx);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let s = 0; s < n; s++) {
        const p = load<f32>(scratch + (<usize>s << 2)) * inv;
        const vp = v + <usize>s * kvRow + kvOff;
        for (let i = 0; i < headDim; i++) {
          const o = <usize>i << 2;
          store<f32>(oh + o, load<f32>(oh + o) + p * f16ToF32(load<u16>(vp + (<usize>i << 1))));
        }
      }
    }
  }
}

/** Attention over an int8 cache (row layout at the top); arguments as refAttention's. */
export function refAttentionKvInt8(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = int8RowBytes(nKVHeads, headDim);
  const qsOff = <usize>nKVHeads << 2;
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
        const sc = dotInt8(qh, row + kvOff, headDim) * load<f32>(row + scaleOff) * scale;
        store<f32>(scratch + (<usize>s << 2), sc);
        mx = max(mx, sc);
      }
      const inv = softmaxUnnormalised(scratch, n, mx);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let s = 0; s < n; s++) {
        const row = v + <usize>s * kvRow;
        const pd = load<f32>(scratch + (<usize>s << 2)) * inv * load<f32>(row + scaleOff);
        const vp = row + kvOff;
        for (let i = 0; i < headDim; i++) {
          const o = <usize>i << 2;
          store<f32>(oh + o, load<f32>(oh + o) + pd * <f32>load<i8>(vp + i));
        }
      }
    }
  }
}
