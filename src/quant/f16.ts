// Half-precision conversions: f32 <-> IEEE f16 and f32 <-> bfloat16, one value at a time (on numbers,
// by exact arithmetic) and in bulk (on typed arrays, by bit manipulation so NaN payloads survive).
//
// f32 -> f16 rounds to nearest, ties to even, with subnormals, overflow to infinity and NaN exactly as
// the x86 F16C instruction (vcvtps2ph) does: a NaN keeps its sign and top 9 payload bits and gets the
// quiet bit. llama.cpp's software fallback turns every NaN into 0x7E00 instead; the scalar form, which
// cannot see a NaN's payload, also returns sign-less 0x7E00. f32 -> bf16 follows llama.cpp's
// ggml_compute_fp32_to_bf16: round to nearest even on the top 16 bits, a NaN becomes its top 16 bits
// with the quiet bit forced.

/** Rounds a non-negative number to the nearest integer, ties to even. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** floor(log2(a)) for a finite a > 0, exact (Math.log2 can be off by one next to powers of two). */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/** IEEE half bits of `x` (first rounded to f32, as the value would be stored in C). */
export function f32ToF16(x: number): number {
  x = Math.fround(x);
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  // Below the smallest normal (2^-14) the spacing is a fixed 2^-24; multiplying by 2^24 is exact.
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let e = exponentOf(a);
  let q = roundHalfEven(a / 2 ** (e - 10)); // 11 significant bits, in [1024, 2048]
  if (q === 2048) {
    e++;
    q = 1024;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | (q - 1024);
}

/** The value of IEEE half bits `h`. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** bfloat16 bits of `x` (first rounded to f32), rounding as llama.cpp does. */
export function f32ToBF16(x: number): number {
  x = Math.fround(x);
  if (Number.isNaN(x)) return 0x7fc0;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  // bf16 keeps f32's exponent range, so its subnormals are f32's, on a grid of 2^-133.
  if (a < 2 ** -126) return sign | roundHalfEven(a * 2 ** 133);
  let e = exponentOf(a);
  let q = roundHalfEven(a / 2 ** (e - 7)); // 8 significant bits, in [128, 256]
  if (q === 256) {
    e++;
    q = 128;
  }
  if (e > 127) return sign | 0x7f80;
  return sign | ((e + 127) << 7) | (q - 128);
}

/** The value of bfloat16 bits `h`. */
export function bf16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return sign * m * 2 ** -133;
  if (e === 255) return m ? NaN : sign * Infinity;
  return sign * (128 + m) * 2 ** (e - 134);
}

/** f16 bits from f32 bits, as F16C's vcvtps2ph with round-to-nearest-even. */
export function f16BitsFromF32Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return m ? sign | 0x7e00 | (m >>> 13) : sign | 0x7c00;
  const e16 = e - 112; // rebias 127 -> 15
  if (e16 >= 31) return sign | 0x7c00;
  if (e16 <= 0) {
    if (e16 < -10) return sign; // below half the smallest subnormal: rounds to zero
    m |= 0x800000;
    const shift = 14 - e16; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e16 << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** f32 bits from f16 bits (exact; NaN payloads kept). */
export function f32BitsFromF16Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  let m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e === 0) {
    if (m === 0) return sign >>> 0;
    let exp = 113; // 2^-14 in f32's bias, lowered once per leading zero of the subnormal mantissa
    while (!(m & 0x400)) {
      m <<= 1;
      exp--;
    }
    return (sign | (exp << 23) | ((m & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
}

/** bf16 bits from f32 bits, as llama.cpp's ggml_compute_fp32_to_bf16. */
export function bf16BitsFromF32Bits(b: number): number {
  if ((b & 0x7fffffff) >>> 0 > 0x7f800000) return ((b >>> 16) | 64) & 0xffff;
  // Non-NaN bits are at most 0xff800000, so the sum stays below 2^32 and >>> is exact.
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Converts `src` to f16 bits in `dst` (allocated when omitted). */
export function f32ArrayToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length < src.length) throw new Error(`f16 destination holds ${dst.length} values, needs ${src.length}`);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) dst[i] = f16BitsFromF32Bits(bits[i]!);
  return dst;
}

/** Converts f16 bits to f32 values in `dst` (allocated when omitted). */
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (dst.length < src.length) throw new Error(`f32 destination holds ${dst.length} values, needs ${src.length}`);
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsFromF16Bits(src[i]!);
  return dst;
}

/** Converts `src` to bf16 bits in `dst` (allocated when omitted). */
export function f32ArrayToBF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length < src.length) throw new Error(`bf16 destination holds ${dst.length} values, needs ${src.length}`);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) dst[i] = bf16BitsFromF32Bits(bits[i]!);
  return dst;
}

/** Converts bf16 bits to f32 values in `dst` (allocated when omitted). */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (dst.length < src.length) throw new Error(`f32 destination holds ${dst.length} values, needs ${src.length}`);
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = (src[i]! << 16) >>> 0;
  return dst;
}
