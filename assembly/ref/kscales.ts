// Unpacking of the 6-bit sub-block scales of the k-quants, shared by the scalar twins and the SIMD
// kernels (a few scalar operations per 256 weights, so one version serves both).

/** Q4_K/Q5_K: scale (bits 0..5) and min (bits 8..13) of 32-weight sub-block j (0..7) from scales[12]. */
// @ts-ignore: decorator
@inline export function scaleMinK4(scales: usize, j: i32): i32 {
  if (j < 4) {
    return (<i32>load<u8>(scales + j) & 63) | ((<i32>load<u8>(scales + j + 4) & 63) << 8);
  }
  const lo = <i32>load<u8>(scales + j + 4);
  const sc = (lo & 15) | ((<i32>load<u8>(scales + j - 4) >> 6) << 4);
  const m = (lo >> 4) | ((<i32>load<u8>(scales + j) >> 6) << 4);
  return sc | (m << 8);
}

/** Q3_K: signed scale (-32..31) of 16-weight group j (0..15) from scales[12]. */
// @ts-ignore: decorator
@inline export function q3kScale(scales: usize, j: i32): i32 {
  const low = j < 8 ? <i32>load<u8>(scales + j) & 15 : <i32>load<u8>(scales + j - 8) >> 4;
  const high = (<i32>load<u8>(scales + 8 + (j & 3)) >> ((j >> 2) << 1)) & 3;
  return (low | (high << 4)) - 32;
}
