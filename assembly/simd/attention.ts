// SIMD128 causal grouped-query attention, same signature and contract as ref/attention.ts: q.k and
// the weighted sum of values run on f32x4 (headDim tails in scalar), exps on four lanes with the
// twin of the scalar exp, the softmax sum in f64 in position order; bit-identical with the twin.
import { expShiftedInPlace } from './expf';
import { hsumF32 } from './lanes';

/** q.k of one query row and one key row, the twin's four-lane order (hsum, then the tail). */
// @ts-ignore: decorator
@inline export function dotQKx4(qh: usize, kp: usize, headDim: i32, d4: i32): f32 {
  let acc = f32x4.splat(0);
  for (let i = 0; i < d4; i += 4) {
    const o = <usize>i << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(qh + o), v128.load(kp + o)));
  }
  let dot = hsumF32(acc);
  for (let i = d4; i < headDim; i++) dot += load<f32>(qh + (<usize>i << 2)) * load<f32>(kp + (<usize>i << 2));
  return dot;
}

export function simdAttention(q: usize, k: usize, v: usize, out: usize, nTok: i32, nHeads: i32, nKVHeads: i32, headDim: i32, kvStride: i32, pos0: i32, scale: f32, scratch: usize, headStart: i32, headEnd: i32): void {
  const group = nHeads / nKVHeads;
  const kvRow = <usize>kvStride << 2;
  const d4 = headDim & ~3;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = headStart; h < headEnd; h++) {
      const qh = q + ((<usize>(t * nHeads + h) * headDim) << 2);
      const oh = out + ((<usize>(t * nHeads + h) * headDim) << 2);
      const kvOff = (<usize>(h / group) * headDim) << 2;
      let mx: f32 = -Infinity;
      for (let s = 0; s < n; s++) {
        const sc = dotQKx4(qh, k + <usize>s * kvRow + kvOff, headDim, d4) * scale;
        store<f32>(scratch + (<usize>s << 2), sc);
        mx = max(mx, sc);
      }
      expShiftedInPlace(scratch, n, mx);
      let sum: f64 = 0;
      for (let s = 0; s < n; s++) sum += load<f32>(scratch + (<usize>s << 2));
      const inv = f32(1.0 / sum);
      for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let s = 0; s < n; s++) {
        const p = load<f32>(scratch + (<usize>s << 2)) * inv;
        const pv = f32x4.splat(p);
        const vp = v + <usize>s * kvRow + kvOff;
        for (let i = 0; i < d4; i += 4) {
          const o = <usize>i << 2;
          v128.store(oh + o, f32x4.add(v128.load(oh + o), f32x4.mul(pv, v128.load(vp + o))));
        }
        for (let i = d4; i < headDim; i++) {
          const o = <usize>i << 2;
          store<f32>(oh + o, load<f32>(oh + o) + p * load<f32>(vp + o));
        }
      }
    }
  }
}
