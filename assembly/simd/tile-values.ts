// The value side of the SIMD tiled attention kernels (simd/attention-tiled.ts over f32 caches,
// simd/kv-tiled.ts over f16 and int8 ones): cache row elements widened to f32 lanes exactly as they
// are loaded (the element type a type parameter: f32, u16 = f16, u8/i8 = codes), how a key tile starts
// a query's output rows, and the four-query weighted sum of value rows. All @inline or generic, so each
// kernel compiles to its own copy, as if written out in it.
import { ATTN_TILE_FACTOR_OFF, ATTN_TILE_K } from '../ref/attention-tiled';
import { loadF16 } from '../half';

/** How a key tile starts a query's output rows: zero (first tile), out * factor, or as they are. */
export const START_ZERO: i32 = 0;
export const START_SCALED: i32 = 1;
export const START_CONTINUE: i32 = 2;

/** One output lane group at o: start it (zero, scaled, or as it is). */
// @ts-ignore: decorator
@inline export function startLanes(o: usize, start: i32, f: v128): v128 {
  if (start == START_ZERO) return f32x4.splat(0);
  const x = v128.load(o);
  return start == START_SCALED ? f32x4.mul(x, f) : x;
}

// @ts-ignore: decorator
@inline export function startScalar(o: usize, start: i32, f: f32): f32 {
  if (start == START_ZERO) return 0;
  const x = load<f32>(o);
  return start == START_SCALED ? x * f : x;
}

/**
 * halfLanesToF32 (simd/lanes.ts), the same f32 values with fewer operations: a subnormal half is
 * 2^-14 * (1 + m / 1024) - 2^-14 (exact, and no f32 subnormal operand) instead of an unsigned convert,
 * which V8 lowers to a long sequence on x86. Keys and values are converted per key tile and query tile,
 * so this is the f16 kernel's inner loop.
 */
// @ts-ignore: decorator
@inline export function halfToF32x4(h: v128): v128 {
  const mag = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const exp = v128.and(h, i32x4.splat(0x7c00));
  const normal = i32x4.add(mag, i32x4.splat(112 << 23));
  const sub = f32x4.sub(i32x4.add(mag, i32x4.splat(113 << 23)), f32x4.splat(reinterpret<f32>(0x38800000)));
  let f = v128.bitselect(sub, normal, i32x4.eq(exp, i32x4.splat(0)));
  f = v128.bitselect(v128.or(mag, i32x4.splat(0x7f800000)), f, i32x4.eq(exp, i32x4.splat(0x7c00)));
  return v128.or(f, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Four cache lanes from element i of row p as f32: T = f32 as they are, u16 f16, u8 unsigned codes, i8 signed codes. */
// @ts-ignore: decorator
@inline export function lanes4<T>(p: usize, i: i32): v128 {
  if (isFloat<T>()) return v128.load(p + (<usize>i << 2));
  if (sizeof<T>() == 2) return halfToF32x4(v128.load16x4_u(p + (<usize>i << 1)));
  if (isSigned<T>()) return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p + <usize>i))));
  return f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p + <usize>i))));
}

/** Element i of row p as f32 (T as lanes4's). */
// @ts-ignore: decorator
@inline export function lane1<T>(p: usize, i: i32): f32 {
  if (isFloat<T>()) return load<f32>(p + (<usize>i << 2));
  if (sizeof<T>() == 2) return loadF16(p + (<usize>i << 1));
  if (isSigned<T>()) return <f32>load<i8>(p + <usize>i);
  return <f32>load<u8>(p + <usize>i);
}

/**
 * The low four of eight raw value elements (load8's) as f32 (V = f32: the first four, u16 f16, i8
 * codes); lanes8hi the high four (f32: loaded from row p, element d + 4, as the raw vector holds four).
 */
// @ts-ignore: decorator
@inline export function lanes8lo<V>(x: v128): v128 {
  if (isFloat<V>()) return x;
  if (sizeof<V>() == 2) return halfToF32x4(i32x4.extend_low_i16x8_u(x));
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(x)));
}

// @ts-ignore: decorator
@inline export function lanes8hi<V>(x: v128, p: usize, d: i32): v128 {
  if (isFloat<V>()) return v128.load(p + (<usize>d << 2) + 16);
  if (sizeof<V>() == 2) return halfToF32x4(i32x4.extend_high_i16x8_u(x));
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_low_i8x16_s(x)));
}

/** Eight elements of row p from element d, raw (lanes8lo/hi widen them; f32: the first four). */
// @ts-ignore: decorator
@inline export function load8<V>(p: usize, d: i32): v128 {
  if (isFloat<V>()) return v128.load(p + (<usize>d << 2));
  if (sizeof<V>() == 2) return v128.load(p + (<usize>d << 1));
  return v128.load64_zero(p + <usize>d);
}

/**
 * Four query rows (output rows o0..o3, weights rows of ATTN_TILE_K at w) started with their factors
 * (workspace ws), then the weighted values of keys [0, cnt) from vBase (every kvRow; V as load8's),
 * eight elements of the row at a time, each value load shared by the four.
 */
// @ts-ignore: decorator
@inline export function accumulate4<V>(o0: usize, o1: usize, o2: usize, o3: usize, w: usize, ws: usize, vBase: usize, kvRow: usize, cnt: i32, headDim: i32, start: i32): void {
  const wRow = <usize>ATTN_TILE_K << 2;
  const fAt = ws + ATTN_TILE_FACTOR_OFF;
  const f0 = v128.load32_splat(fAt), f1 = v128.load32_splat(fAt + 4), f2 = v128.load32_splat(fAt + 8), f3 = v128.load32_splat(fAt + 12);
  const d8 = headDim & ~7;
  for (let d = 0; d < d8; d += 8) {
    const od = <usize>d << 2;
    const p0 = o0 + od, p1 = o1 + od, p2 = o2 + od, p3 = o3 + od;
    let a00 = startLanes(p0, start, f0), a01 = startLanes(p0 + 16, start, f0);
    let a10 = startLanes(p1, start, f1), a11 = startLanes(p1 + 16, start, f1);
    let a20 = startLanes(p2, start, f2), a21 = startLanes(p2 + 16, start, f2);
    let a30 = startLanes(p3, start, f3), a31 = startLanes(p3 + 16, start, f3);
    for (let j = 0; j < cnt; j++) {
      const row = vBase + <usize>j * kvRow;
      const x = load8<V>(row, d);
      const v0 = lanes8lo<V>(x), v1 = lanes8hi<V>(x, row, d);
      const wj = w + (<usize>j << 2);
      const w0 = v128.load32_splat(wj), w1 = v128.load32_splat(wj + wRow);
      const w2 = v128.load32_splat(wj + 2 * wRow), w3 = v128.load32_splat(wj + 3 * wRow);
      a00 = f32x4.add(a00, f32x4.mul(w0, v0)); a01 = f32x4.add(a01, f32x4.mul(w0, v1));
      a10 = f32x4.add(a10, f32x4.mul(w1, v0)); a11 = f32x4.add(a11, f32x4.mul(w1, v1));
      a20 = f32x4.add(a20, f32x4.mul(w2, v0)); a21 = f32x4.add(a21, f32x4.mul(w2, v1));
      a30 = f32x4.add(a30, f32x4.mul(w3, v0)); a31 = f32x4.add(a31, f32x4.mul(w3, v1));
    }
    v128.store(p0, a00); v128.store(p0 + 16, a01);
    v128.store(p1, a10); v128.store(p1 + 16, a11);
    v128.store(p2, a20); v128.store(p2 + 16, a21);
    v128.store(p3, a30); v128.store(p3 + 16, a31);
  }
  // The rest of each row (fewer than eight elements) one query at a time: the same per-element order.
  if (d8 < headDim) {
    for (let i = 0; i < 4; i++) {
      const oi = i == 0 ? o0 : i == 1 ? o1 : i == 2 ? o2 : o3;
      accumulateRest<V>(oi, w + <usize>i * wRow, vBase, kvRow, cnt, d8, headDim, start, load<f32>(fAt + (<usize>i << 2)));
    }
  }
}

/** Elements [d8, headDim) of one output row: the tail loops of simd/kv-tiled.ts's accumulate1. */
function accumulateRest<V>(oh: usize, w: usize, vBase: usize, kvRow: usize, cnt: i32, d8: i32, headDim: i32, start: i32, factor: f32): void {
  const f = f32x4.splat(factor);
  const d4 = headDim & ~3;
  for (let d = d8; d < d4; d += 4) {
    const o = oh + (<usize>d << 2);
    let a = startLanes(o, start, f);
    for (let j = 0; j < cnt; j++) a = f32x4.add(a, f32x4.mul(v128.load32_splat(w + (<usize>j << 2)), lanes4<V>(vBase + <usize>j * kvRow, d)));
    v128.store(o, a);
  }
  for (let d = d4; d < headDim; d++) {
    const o = oh + (<usize>d << 2);
    let a = startScalar(o, start, factor);
    for (let j = 0; j < cnt; j++) a += load<f32>(w + (<usize>j << 2)) * lane1<V>(vBase + <usize>j * kvRow, d);
    store<f32>(o, a);
  }
}
