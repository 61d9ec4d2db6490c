// Scalar twin of causal grouped-query attention over a per-layer f32 KV cache: for each query token
// and head, scores = scale * q.k over the visible positions, softmax with max subtraction (sum in
// f64, as ggml's soft_max), then the probability-weighted sum of the values. Bit-identical with
// simd/attention.ts (q.k in its four-lane order).
import { expf32 } from './expf';

/**
 * q, out: nTok rows of nHeads*headDim f32. k, v: [ctx][kvStride] f32 (kvStride = nKVHeads*headDim).
 * Query t sits at position pos0 + t and sees positions 0..pos0+t. Heads [headStart, headEnd) only.
 * scratch: at least pos0 + nTok f32 of the caller's, per concurrent call.
 */
/**
 * q.k in the SIMD kernel's order: four f32 lanes (lane j takes dims i = j mod 4 of the whole groups of
 * four), (l0 + l1) + (l2 + l3), then the remaining dims one by one.
 */
export function dotQK(qh: usize, kp: usize, headDim: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  const d4 = headDim & ~3;
  for (let i = 0; i < d4; i += 4) {
    const qi = qh + (<usize>i << 2), ki = kp + (<usize>i << 2);
    l0 += load<f32>(qi) * load<f32>(ki);
    l1 += load<f32>(qi + 4) * load<f32>(ki + 4);
    l2 += load<f32>(qi + 8) * load<f32>(ki + 8);
    l3 += load<f32>(qi + 12) * load<f32>(ki + 12);
  }
  let dot = (l0 + l1) + (l2 + l3);
  for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * load<f32>(kp + (<usize>i << 2));
  return dot;
}

export function refAttention(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = <usize>kvStride << 2;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = headStart; h < headEnd; h++) {
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      const kvOff = (<usize>(h / group) * headDim) << 2;
      let mx: f32 = -Infinity;
      for (let s = 0; s < n; s++) {
        const kp = k + <usize>s * kvRow + kvOff;
        const dot = dotQK(qh, kp, headDim);
        const sc = dot * scale;
        store<f32>(scratch + (<usize>s << 2), sc);
        mx = max(mx, sc);
      }
      let sum: f64 = 0;
      for (let s = 0; s < n; s++) {
        const e = expf32(load<f32>(scratch + (<usize>s << 2)) - mx);
        store<f32>(scratch + (<usize>s << 2), e);
        sum += e;
      }
      const inv = f32(1.0 / sum);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let s = 0; s < n; s++) {
        const p = load<f32>(scratch + (<usize>s << 2)) * inv;
        const vp = v + <usize>s * kvRow + kvOff;
        for (let i = 0; i < headDim; i++) {
          const o = <usize>i << 2;
          store<f32>(oh + o, load<f32>(oh + o) + p * load<f32>(vp + o));
        }
      }
    }
  }
}
