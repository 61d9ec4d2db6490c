// SIMD128 elementwise kernels on f32 rows, same signatures and math as ref/ops.ts, bit for bit (the
// f64 sum of squares of rmsNorm takes the squares in the twin's order). SwiGLU is scalar in every
// build (ref/expf.ts).

export function simdRmsNorm(x: usize, weight: usize, out: usize, cols: i32, nTok: i32, eps: f32): void {
  const n4 = cols & ~3;
  for (let t = 0; t < nTok; t++) {
    const xr = x + ((<usize>t * cols) << 2), yr = out + ((<usize>t * cols) << 2);
    // squares in f32 lanes, summed one by one in f64 in index order as ggml's rms_norm (and the twin)
    let sum: f64 = 0;
    for (let i = 0; i < n4; i += 4) {
      const v = v128.load(xr + (<usize>i << 2));
      const sq = f32x4.mul(v, v);
      sum += <f64>f32x4.extract_lane(sq, 0);
      sum += <f64>f32x4.extract_lane(sq, 1);
      sum += <f64>f32x4.extract_lane(sq, 2);
      sum += <f64>f32x4.extract_lane(sq, 3);
    }
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
