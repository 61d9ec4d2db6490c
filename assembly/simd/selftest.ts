// SIMD versions of the start-up known-answer probe: the instructions the kernels depend on (relaxed
// dot where the build has it, widening multiply-add otherwise), run on data the caller checks. `n` is a
// multiple of 16; `b` holds values in 0..127. The relaxed build also relies on f32x4.relaxed_madd being
// fused (one rounding, as x86's vfmadd in llama.cpp's kernels): when this engine does not fuse it, the
// probe returns a wrong sum, so the build is passed over like one whose relaxed dot is wrong.

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
  const sum = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  if (ASC_FEATURE_RELAXED_SIMD && !maddIsFused(<f32>n)) return sum + 1;
  return sum;
}

/**
 * (1 + 2^-12)^2 - (1 + 2^-11) is 2^-24 with one rounding and 0 with two. `n` (the probe length, never
 * 0) keeps the operands opaque to the optimizer.
 */
function maddIsFused(n: f32): bool {
  const a = f32x4.splat(<f32>1 + <f32>(n * 0) + reinterpret<f32>(0x39800000)); // 1 + 2^-12
  const c = f32x4.splat(-(<f32>1 + reinterpret<f32>(0x3a000000))); // -(1 + 2^-11)
  return f32x4.extract_lane(f32x4.relaxed_madd(a, a, c), 0) == reinterpret<f32>(0x33800000); // 2^-24
}
