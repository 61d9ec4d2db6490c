// SIMD128 fused RMSNorm + activation conversion, same signatures and bits as ref/norm-convert.ts:
// per token, simdRmsNorm's row into `out` and the SIMD converter on it while it is in L1 (the f16 and
// bf16 conversions are scalar in every build). One call does what rmsNorm then convertRows did, so a
// sublayer's input costs one dispatch (one barrier when split) instead of two.
import { BYTES_Q8_0, BYTES_Q8_1, BYTES_Q8_K, QK_K } from '../formats';
import { refConvertRowsBF16, refConvertRowsF16 } from '../ref/quantize';
import { simdRmsNorm } from './ops';
import { simdQuantizeRowsQ8_0, simdQuantizeRowsQ8_1, simdQuantizeRowsQ8_K } from './quantize';

export function simdRmsNormToQ8_0(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  const rowBytes = <usize>(cols >> 5) * BYTES_Q8_0;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    simdRmsNorm(x + o, weight, out + o, cols, 1, eps);
    simdQuantizeRowsQ8_0(out + o, dst + <usize>t * rowBytes, cols, 1);
  }
}

export function simdRmsNormToQ8_1(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  const rowBytes = <usize>(cols >> 5) * BYTES_Q8_1;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    simdRmsNorm(x + o, weight, out + o, cols, 1, eps);
    simdQuantizeRowsQ8_1(out + o, dst + <usize>t * rowBytes, cols, 1);
  }
}

export function simdRmsNormToQ8_K(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  const rowBytes = <usize>(cols / QK_K) * BYTES_Q8_K;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    simdRmsNorm(x + o, weight, out + o, cols, 1, eps);
    simdQuantizeRowsQ8_K(out + o, dst + <usize>t * rowBytes, cols, 1);
  }
}

export function simdRmsNormToF16(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    simdRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refConvertRowsF16(out + o, dst + (o >> 1), cols, 1);
  }
}

export function simdRmsNormToBF16(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    simdRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refConvertRowsBF16(out + o, dst + (o >> 1), cols, 1);
  }
}
