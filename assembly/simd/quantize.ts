// SIMD128 activation quantization to Q8_0 / Q8_1 / Q8_K blocks, byte for byte what the scalar twin
// (ref/quantize.ts) writes: the block's absolute maximum (exact in any order), d and 1/d from it in
// scalar f32 as there, then q = nearest(x * id) in four lanes (f32x4.nearest rounds half to even as the
// scalar nearest does, and the f32 products are the same), narrowed to int8 (|q| <= 127: exact).
import { BYTES_Q8_0, BYTES_Q8_1, BYTES_Q8_K, QK_K } from '../formats';
import { f32ToF16 } from '../half';
import { hsumI32 } from './lanes';

/** Four f32 lanes at p times id, rounded to the nearest integer (ties to even), as i32x4. */
// @ts-ignore: decorator
@inline function quantLanes(p: usize, id: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), id)));
}

function quantizeRowsQ8_32(x: usize, dst: usize, cols: i32, nTok: i32, withSum: bool): void {
  const nb = cols >> 5;
  const blockBytes: usize = withSum ? BYTES_Q8_1 : BYTES_Q8_0;
  const qOff: usize = withSum ? 4 : 2;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xb = x + ((<usize>t * cols + (b << 5)) << 2);
      const yb = dst + (<usize>t * nb + b) * blockBytes;
      let m = f32x4.max(f32x4.max(f32x4.abs(v128.load(xb)), f32x4.abs(v128.load(xb + 16))), f32x4.max(f32x4.abs(v128.load(xb + 32)), f32x4.abs(v128.load(xb + 48))));
      m = f32x4.max(m, f32x4.max(f32x4.max(f32x4.abs(v128.load(xb + 64)), f32x4.abs(v128.load(xb + 80))), f32x4.max(f32x4.abs(v128.load(xb + 96)), f32x4.abs(v128.load(xb + 112)))));
      m = f32x4.max(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
      m = f32x4.max(m, i32x4.shuffle(m, m, 1, 0, 3, 2));
      const amax = f32x4.extract_lane(m, 0);
      const d = amax / 127;
      const id: f32 = amax != 0 ? 127 / amax : 0;
      store<u16>(yb, <u16>f32ToF16(d));
      const idv = f32x4.splat(id);
      const q0 = quantLanes(xb, idv), q1 = quantLanes(xb + 16, idv), q2 = quantLanes(xb + 32, idv), q3 = quantLanes(xb + 48, idv);
      const q4 = quantLanes(xb + 64, idv), q5 = quantLanes(xb + 80, idv), q6 = quantLanes(xb + 96, idv), q7 = quantLanes(xb + 112, idv);
      v128.store(yb + qOff, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
      v128.store(yb + qOff + 16, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7)));
      if (withSum) {
        const sum = hsumI32(i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7))));
        store<u16>(yb + 2, <u16>f32ToF16(d * f32(sum)));
      }
    }
  }
}

export function simdQuantizeRowsQ8_0(x: usize, dst: usize, cols: i32, nTok: i32): void {
  quantizeRowsQ8_32(x, dst, cols, nTok, false);
}

export function simdQuantizeRowsQ8_1(x: usize, dst: usize, cols: i32, nTok: i32): void {
  quantizeRowsQ8_32(x, dst, cols, nTok, true);
}

/**
 * Q8_K blocks as ref/quantize.ts (llama.cpp's quantize_row_q8_K_ref): iscale = -127 / vmax, vmax the
 * first value of largest magnitude (its sign matters: q = -127 there), q = min(127, nearest(iscale*x))
 * (round half to even, what nearest_int's magic-number addition gives for |v| < 2^22; here |v| <= 127),
 * d = 1/iscale, and the sums of each 16 quants. The maximum is taken with pmax, which like the twin's
 * `abs(v) > amax` skips NaN; the first index reaching it is found by lane compares.
 */
export function simdQuantizeRowsQ8_K(x: usize, dst: usize, cols: i32, nTok: i32): void {
  const nb = cols / QK_K;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xb = x + ((<usize>t * cols + b * QK_K) << 2);
      const yb = dst + (<usize>t * nb + b) * BYTES_Q8_K;
      let m0 = f32x4.splat(0), m1 = f32x4.splat(0);
      for (let j = 0; j < QK_K * 4; j += 32) {
        m0 = f32x4.pmax(m0, f32x4.abs(v128.load(xb + j)));
        m1 = f32x4.pmax(m1, f32x4.abs(v128.load(xb + j + 16)));
      }
      let m = f32x4.pmax(m0, m1);
      m = f32x4.pmax(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
      m = f32x4.pmax(m, i32x4.shuffle(m, m, 1, 0, 3, 2));
      const amax = f32x4.extract_lane(m, 0);
      if (amax == 0) {
        memory.fill(yb, 0, BYTES_Q8_K);
        continue;
      }
      let first = 0;
      for (let j = 0; j < QK_K; j += 4) {
        const hits = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xb + (<usize>j << 2))), m));
        if (hits != 0) {
          first = j + ctz(hits);
          break;
        }
      }
      const iscale: f32 = -127 / load<f32>(xb + (<usize>first << 2));
      const iv = f32x4.splat(iscale);
      const top = i32x4.splat(127);
      for (let g = 0; g < 16; g++) {
        const xg = xb + (<usize>g << 6);
        const q0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(iv, v128.load(xg)))), top);
        const q1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(iv, v128.load(xg + 16)))), top);
        const q2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(iv, v128.load(xg + 32)))), top);
        const q3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(iv, v128.load(xg + 48)))), top);
        v128.store(yb + 4 + (<usize>g << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
        store<i16>(yb + 260 + (<usize>g << 1), <i16>hsumI32(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3))));
      }
      store<f32>(yb, 1 / iscale);
    }
  }
}
