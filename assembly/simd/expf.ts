// Four-lane twin of ref/expf.ts's expf32 (softmax): the same operations in the same order, so lanes match the scalar
// function bit for bit (constants and domain are documented there).
import { C2, C3, C4, C5, C6, EXP_MAX, EXP_MIN, expf32, LN2_HI, LN2_LO, LOG2E } from '../ref/expf';

// @ts-ignore: decorator
@inline export function expF32x4(x: v128): v128 {
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI))), f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.add(f32x4.splat(C5), f32x4.mul(r, f32x4.splat(C6)));
  p = f32x4.add(f32x4.splat(C4), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(C3), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(C2), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(r, p));
  // Out-of-domain lanes give garbage here (n may be out of range); the selects below replace them.
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  let y = f32x4.mul(p, pow2);
  y = v128.andnot(y, f32x4.lt(x, f32x4.splat(EXP_MIN)));
  return v128.bitselect(f32x4.splat(Infinity), y, f32x4.gt(x, f32x4.splat(EXP_MAX)));
}

/**
 * exp(x - m) of the n f32 at p, in place: four lanes at a time, then the tail with the scalar expf32
 * (the same bits either way). The softmax pass of the attention kernels (one-pass, KV and tiled).
 */
// @ts-ignore: decorator
@inline export function expShiftedInPlace(p: usize, n: i32, m: f32): void {
  const n4 = n & ~3;
  const mv = f32x4.splat(m);
  for (let s = 0; s < n4; s += 4) {
    const a = p + (<usize>s << 2);
    v128.store(a, expF32x4(f32x4.sub(v128.load(a), mv)));
  }
  for (let s = n4; s < n; s++) {
    const a = p + (<usize>s << 2);
    store<f32>(a, expf32(load<f32>(a) - m));
  }
}
