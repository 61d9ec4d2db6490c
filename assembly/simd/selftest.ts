// SIMD versions of the start-up known-answer probe: the instruction the int8 kernels depend on
// (relaxed dot where the build has it, widening multiply-add otherwise), run on data the caller
// checks. `n` is a multiple of 16; `b` holds values in 0..127.

export function simdDotI8I7(a: usize, b: usize, n: i32): i32 {
  let acc = i32x4.splat(0);
  for (let i = 0; i < n; i += 16) {
    const va = v128.load(a + <usize>i);
    const vb = v128.load(b + <usize>i);
    if (ASC_FEATURE_RELAXED_SIMD) {
      acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(va, vb, acc);
    } else {
      const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(va), i16x8.extend_low_i8x16_s(vb));
      const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(va), i16x8.extend_high_i8x16_s(vb));
      acc = i32x4.add(acc, i32x4.add(lo, hi));
    }
  }
  return i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
}
