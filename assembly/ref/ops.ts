// Scalar twins of the elementwise kernels on f32 rows: RMS norm, row adds, bias add and scaling; and
// SwiGLU's silu(gate)*up, scalar in every build.
import { swiglu } from './expf';

/**
 * out = x / sqrt(mean(x^2) + eps) * weight for nTok rows of `cols` (weight = 0: no weight). The sum of
 * squares accumulates in f64 and the scale is applied before the weight, as ggml's rms_norm + mul.
 */
export function refRmsNorm(x: usize, weight: usize, out: usize, cols: i32, nTok: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const xr = x + ((<usize>t * cols) << 2), yr = out + ((<usize>t * cols) << 2);
    let sum: f64 = 0;
    for (let i = 0; i < cols; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      sum += f64(v * v);
    }
    const scale: f32 = 1 / sqrt<f32>(f32(sum / f64(cols)) + eps);
    for (let i = 0; i < cols; i++) {
      const o = <usize>i << 2;
      let v = load<f32>(xr + o) * scale;
      if (weight) v *= load<f32>(weight + o);
      store<f32>(yr + o, v);
    }
  }
}

/**
 * out = silu(gate) * up, n values, every one on ggml_v_expf: the value depends only on its inputs, so
 * any split of a range gives the same bits. Equal to ggml_vec_swiglu_f32 for rows that are whole
 * multiples of 16 (otherwise ggml uses the C library's expf on each row's last cols % 16).
 */
export function refSiluMul(gate: usize, up: usize, out: usize, n: i32): void {
  swiglu(gate, up, out, n, n);
}

/** out = silu(gate) * up for nTok rows of `cols`, each row exactly as ggml_vec_swiglu_f32. */
export function refSiluMulRows(gate: usize, up: usize, out: usize, cols: i32, nTok: i32): void {
  for (let t = 0; t < nTok; t++) {
    const o = (<usize>t * cols) << 2;
    swiglu(gate + o, up + o, out + o, cols, cols & ~15);
  }
}

/** dst[i] += src[i]. */
export function refAddRows(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** x[t][i] += bias[i] for nTok rows of `cols`. */
export function refAddBias(x: usize, bias: usize, cols: i32, nTok: i32): void {
  for (let t = 0; t < nTok; t++) refAddRows(x + ((<usize>t * cols) << 2), bias, cols);
}

/** x[i] *= s. */
export function refScaleRows(x: usize, s: f32, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) * s);
  }
}
