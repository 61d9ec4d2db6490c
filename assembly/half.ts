// Scalar conversions between f32 and the 16-bit float formats (IEEE half, bfloat16), shared by the
// scalar twins and the SIMD kernels: both must read and write the same bits.

/** IEEE half bits to f32, exact for every input (subnormals, infinities, NaN). */
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  // Integer steps only: a float multiply by 2^112 would rebias in one step, but its operand is an f32
  // subnormal for every subnormal half, and x86 takes a slow microcode assist on those (k-quant block
  // scales of real models are often subnormal halves, so that assist came once per block).
  const exp = h & 0x7c00, man = h & 0x3ff;
  let bits: u32;
  if (exp == 0x7c00) bits = 0x7f800000 | (man << 13);
  else if (exp != 0) bits = ((exp + 0x1c000) << 13) | (man << 13);
  else if (man == 0) bits = 0;
  else {
    // man * 2^-24: move its leading bit to the implicit position (lz: its distance below bit 9)
    const lz = clz<u32>(man) - 22;
    bits = ((112 - lz) << 23) | (((man << (lz + 1)) & 0x3ff) << 13);
  }
  return reinterpret<f32>(bits | ((h & 0x8000) << 16));
}

/** f32 to IEEE half bits, rounding to nearest, ties to even (as F16C's vcvtps2ph and ggml do). */
export function f32ToF16(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const sign = (x >> 16) & 0x8000;
  const ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return sign | 0x7e00; // NaN stays a (quiet) NaN
  if (ax >= 0x38800000) {
    // Normal half range (or overflow): rebias the exponent by 112, round away the low 13 bits.
    const t = ax - 0x38000000;
    const h = (t + 0xfff + ((t >> 13) & 1)) >> 13;
    return sign | (h >= 0x7c00 ? 0x7c00 : h);
  }
  // Subnormal half: adding 0.5 leaves the value counted in units of 2^-24 in the mantissa, rounded
  // to nearest even by the f32 addition itself.
  return sign | (reinterpret<u32>(reinterpret<f32>(ax) + 0.5) - 0x3f000000);
}

/** bfloat16 bits to f32 (exact). */
// @ts-ignore: decorator
@inline export function bf16ToF32(h: u32): f32 {
  return reinterpret<f32>(h << 16);
}

/** f32 to bfloat16 bits, rounding to nearest even; NaN kept quiet (as ggml does). */
export function f32ToBF16(f: f32): u32 {
  const x = reinterpret<u32>(f);
  if ((x & 0x7fffffff) > 0x7f800000) return (x >> 16) | 64;
  return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

/** f16 field at `p` as f32. */
// @ts-ignore: decorator
@inline export function loadF16(p: usize): f32 {
  return f16ToF32(<u32>load<u16>(p));
}
