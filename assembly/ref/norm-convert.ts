// Scalar twins of the fused RMSNorm + activation conversion: each token's row is normed into `out`
// (f32, exactly refRmsNorm) and converted from there at once, while it is in cache (exactly the ref
// converters), so a sublayer's input is ready for its matmuls after one kernel call instead of two.
// The f32 row stays written for whatever else reads it (F32 weights, a second activation format).
import { BYTES_Q8_0, BYTES_Q8_1, BYTES_Q8_K, QK_K } from '../formats';
import { refRmsNorm } from './ops';
import { refConvertRowsBF16, refConvertRowsF16, refQuantizeRowsQ8_0, refQuantizeRowsQ8_1, refQuantizeRowsQ8_K } from './quantize';

export function refRmsNormToQ8_0(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  const rowBytes = <usize>(cols >> 5) * BYTES_Q8_0;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    refRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refQuantizeRowsQ8_0(out + o, dst + <usize>t * rowBytes, cols, 1);
  }
}

export function refRmsNormToQ8_1(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  const rowBytes = <usize>(cols >> 5) * BYTES_Q8_1;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    refRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refQuantizeRowsQ8_1(out + o, dst + <usize>t * rowBytes, cols, 1);
  }
}

export function refRmsNormToQ8_K(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  const rowBytes = <usize>(cols / QK_K) * BYTES_Q8_K;
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    refRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refQuantizeRowsQ8_K(out + o, dst + <usize>t * rowBytes, cols, 1);
  }
}

export function refRmsNormToF16(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    refRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refConvertRowsF16(out + o, dst + (o >> 1), cols, 1);
  }
}

export function refRmsNormToBF16(x: usize, weight: usize, out: usize, dst: usize, cols: i32, nTok: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    refRmsNorm(x + o, weight, out + o, cols, 1, eps);
    refConvertRowsBF16(out + o, dst + (o >> 1), cols, 1);
  }
}
