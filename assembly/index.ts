// The kernel module's exported entry points. Built three times from these sources (scalar, simd,
// relaxed); each export resolves at compile time to the SIMD version or its scalar twin in ref/.
// Every kernel takes pointers into the imported shared memory and lengths; none allocates.
import { refDotI8I7 } from './ref/selftest';
import { simdDotI8I7 } from './simd/selftest';

export { blockSize, blockBytes } from './formats';

/** 0 = scalar, 1 = simd, 2 = relaxed: what this build was compiled with. */
export function kernelVariant(): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return 2;
  if (ASC_FEATURE_SIMD) return 1;
  return 0;
}

/** First byte of memory that no static data of this module uses. */
export function heapBase(): usize {
  return __heap_base;
}

/** Known-answer probe run at start-up: sum of a[i]*b[i], a signed bytes, b in 0..127, n % 16 == 0. */
export function selfTestDotI8(a: usize, b: usize, n: i32): i32 {
  if (ASC_FEATURE_SIMD) return simdDotI8I7(a, b, n);
  return refDotI8I7(a, b, n);
}
