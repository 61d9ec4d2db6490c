// Scalar conversion of f32 activation rows to the formats the dot products take: Q8_0, Q8_1 and Q8_K
// as llama.cpp quantizes activations on x86 (quantize_row_q8_0/q8_1 with AVX, quantize_row_q8_K_ref),
// and F16/BF16 rows. One row per token; a row of `cols` values is cols/blockSize blocks.
import { BYTES_Q8_0, BYTES_Q8_1, BYTES_Q8_K, QK_K } from '../formats';
import { f32ToBF16, f32ToF16 } from '../half';

/** Q8_0 and Q8_1 blocks (d = amax/127, q = round-half-even(x*127/amax)); Q8_1 adds s = d*sum(q). */
function quantizeRowsQ8_32(x: usize, dst: usize, cols: i32, nTok: i32, withSum: bool): void {
  const nb = cols >> 5;
  const blockBytes: usize = withSum ? BYTES_Q8_1 : BYTES_Q8_0;
  const qOff: usize = withSum ? 4 : 2;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xb = x + ((<usize>t * cols + (b << 5)) << 2);
      const yb = dst + (<usize>t * nb + b) * blockBytes;
      let amax: f32 = 0;
      for (let j = 0; j < 32; j++) amax = max(amax, abs(load<f32>(xb + (j << 2))));
      const d = amax / 127;
      const id: f32 = amax != 0 ? 127 / amax : 0;
      store<u16>(yb, <u16>f32ToF16(d));
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const q = <i32>nearest<f32>(load<f32>(xb + (j << 2)) * id);
        store<i8>(yb + qOff + j, <i8>q);
        sum += q;
      }
      if (withSum) store<u16>(yb + 2, <u16>f32ToF16(d * f32(sum)));
    }
  }
}

export function refQuantizeRowsQ8_0(x: usize, dst: usize, cols: i32, nTok: i32): void {
  quantizeRowsQ8_32(x, dst, cols, nTok, false);
}

export function refQuantizeRowsQ8_1(x: usize, dst: usize, cols: i32, nTok: i32): void {
  quantizeRowsQ8_32(x, dst, cols, nTok, true);
}

/** Q8_K blocks: f32 d from the signed value of largest magnitude (q = -127 there), bsums per 16. */
export function refQuantizeRowsQ8_K(x: usize, dst: usize, cols: i32, nTok: i32): void {
  const nb = cols / QK_K;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xb = x + ((<usize>t * cols + b * QK_K) << 2);
      const yb = dst + (<usize>t * nb + b) * BYTES_Q8_K;
      let amax: f32 = 0;
      let vmax: f32 = 0;
      for (let j = 0; j < QK_K; j++) {
        const v = load<f32>(xb + (j << 2));
        if (abs(v) > amax) { amax = abs(v); vmax = v; }
      }
      if (amax == 0) {
        memory.fill(yb, 0, BYTES_Q8_K);
        continue;
      }
      const iscale: f32 = -127 / vmax;
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let j = g << 4; j < (g << 4) + 16; j++) {
          const q = min(127, <i32>nearest<f32>(iscale * load<f32>(xb + (j << 2))));
          store<i8>(yb + 4 + j, <i8>q);
          sum += q;
        }
        store<i16>(yb + 260 + (g << 1), <i16>sum);
      }
      store<f32>(yb, 1 / iscale);
    }
  }
}

/** Rows of f32 to rows of IEEE half (round to nearest even). */
export function refConvertRowsF16(x: usize, dst: usize, cols: i32, nTok: i32): void {
  const n = <usize>cols * nTok;
  for (let i: usize = 0; i < n; i++) store<u16>(dst + (i << 1), <u16>f32ToF16(load<f32>(x + (i << 2))));
}

/** Rows of f32 to rows of bfloat16 (round to nearest even). */
export function refConvertRowsBF16(x: usize, dst: usize, cols: i32, nTok: i32): void {
  const n = <usize>cols * nTok;
  for (let i: usize = 0; i < n; i++) store<u16>(dst + (i << 1), <u16>f32ToBF16(load<f32>(x + (i << 2))));
}
