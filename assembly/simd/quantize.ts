// SIMD128 activation quantization to Q8_0 / Q8_1 blocks, byte for byte what the scalar twin
// (ref/quantize.ts) writes: the block's absolute maximum (exact in any order), d and 1/d from it in
// scalar f32 as there, then q = nearest(x * id) in four lanes (f32x4.nearest rounds half to even as the
// scalar nearest does, and the f32 products are the same), narrowed to int8 (|q| <= 127: exact).
import { BYTES_Q8_0, BYTES_Q8_1 } from '../formats';
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
