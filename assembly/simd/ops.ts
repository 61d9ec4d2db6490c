// SIMD128 elementwise kernels on f32 rows, same signatures and math as ref/ops.ts. The f64 sum of
// squares of rmsNorm adds the same f32 squares in another order (two f64x2 lanes), and siluMul uses
// the lane twin of the scalar exp, so results match the twins to rounding (siluMul exactly).
import { siluF32 } from '../ref/expf';
import { siluF32x4 } from './expf';

export function simdRmsNorm(x: usize, weight: usize, out: usize, cols: i32, nTok: i32, eps: f32): void {
  const n4 = cols & ~3;
  for (let t = 0; t < nTok; t++) {
    const xr = x + ((<usize>t * cols) << 2), yr = out + ((<usize>t * cols) << 2);
    let acc = f64x2.splat(0);
    for (let i = 0; i < n4; i += 4) {
      const v = v128.load(xr + (<usize>i << 2));
      const sq = f32x4.mul(v, v);
      acc = f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(sq), f64x2.promote_low_f32x4(v128.shuffle<f32>(sq, sq, 2, 3, 0, 1))));
    }
    let sum = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
    for (let i = n4; i < cols; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      sum += f64(v * v);
    }
    const scale: f32 = 1 / sqrt<f32>(f32(sum / f64(cols)) + eps);
    const sv = f32x4.splat(scale);
    for (let i = 0; i < n4; i += 4) {
      const o = <usize>i << 2;
      let v = f32x4.mul(v128.load(xr + o), sv);
      if (weight) v = f32x4.mul(v, v128.load(weight + o));
      v128.store(yr + o, v);
    }
    for (let i = n4; i < cols; i++) {
      const o = <usize>i << 2;
      let v = load<f32>(xr + o) * scale;
      if (weight) v *= load<f32>(weight + o);
      store<f32>(yr + o, v);
    }
  }
}

export function simdSiluMul(gate: usize, up: usize, out: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(siluF32x4(v128.load(gate + o)), v128.load(up + o)));
  }
  for (let i = n4; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, siluF32(load<f32>(gate + o)) * load<f32>(up + o));
  }
}

export function simdAddRows(dst: usize, src: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (let i = n4; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

export function simdAddBias(x: usize, bias: usize, cols: i32, nTok: i32): void {
  for (let t = 0; t < nTok; t++) simdAddRows(x + ((<usize>t * cols) << 2), bias, cols);
}

export function simdScaleRows(x: usize, s: f32, n: i32): void {
  const n4 = n & ~3;
  const sv = f32x4.splat(s);
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.mul(v128.load(x + o), sv));
  }
  for (let i = n4; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) * s);
  }
}
