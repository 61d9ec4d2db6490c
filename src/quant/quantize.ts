// Scalar reference quantizers: one row of f32 to a tensor format, bit-identical to llama.cpp's
// quantize_row_*_ref (ggml-quants.c, no importance matrix). C's float arithmetic is reproduced exactly:
// every operation's result is rounded to f32 with Math.fround (an f32 op computed in f64 and rounded
// once is the correctly rounded f32 result), roundf rounds half away from zero, nearest_int rounds half
// to even through the float magic-number trick, and float-to-int8 conversions truncate and wrap as
// x86 code does. No fused multiply-add is assumed: llama.cpp's x86-64 builds of ggml-base have none
// (see test/quant-bit-identity.test.ts, which checks this against files llama.cpp wrote).
import { f16ToF32, f32ArrayToBF16, f32ArrayToF16, f32ToF16 } from './f16.js';
import { GGMLType, QK_K, typeTraits } from './formats.js';

const f = Math.fround;

/** GROUP_MAX_EPS of ggml-quants.c: below this a group counts as all zero. */
const GROUP_MAX_EPS = f(1e-15);
const FLT_MAX = f(3.4028234663852886e38);

/** Quantizes `nBlocks` blocks of `x` into `out` (viewed also as `view`). */
type BlockQuantizer = (x: Float32Array, nBlocks: number, out: Uint8Array, view: DataView) => void;

/** C's (int)/(int8_t) conversion of a float on x86: truncate; NaN and out-of-range give INT_MIN. */
function truncToInt32(v: number): number {
  const t = Math.trunc(v);
  return t >= -2147483648 && t <= 2147483647 ? t : -2147483648;
}

/** (int8_t)v, with the low byte kept as x86 does after cvttss2si. */
function toInt8(v: number): number {
  return (truncToInt32(v) << 24) >> 24;
}

/** C's roundf: nearest integer, halves away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** The f32 bit pattern of an f32 value (rare path of nearestInt only). */
function f32Bits(v: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, v, true);
  return view.getUint32(0, true);
}

/**
 * ggml's nearest_int: adds 1.5 * 2^23 in f32 so the sum's low mantissa bits hold the rounded integer
 * (ties to even). Inside its asserted range that equals the subtraction below; outside it (never for
 * finite weights) the bit trick is replayed so even garbage comes out as llama.cpp's does.
 */
function nearestInt(v: number): number {
  const s = f(v + 12582912);
  if (Math.abs(v) <= 4194303) return s - 12582912;
  return (f32Bits(s) & 0x007fffff) - 0x00400000;
}

// ---------------------------------------------------------------- 32-weight formats

/** The value of largest magnitude among x[start..start+n), keeping its sign (the first on ties). */
function signedAbsMax(x: Float32Array, start: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = start; j < start + n; j++) {
    const v = x[j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function quantQ4_0(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const o = 18 * i;
    const max = signedAbsMax(x, xo, 32);
    const d = f(max / -8);
    const id = d !== 0 ? f(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < 16; j++) {
      const x0 = f(x[xo + j]! * id);
      const x1 = f(x[xo + 16 + j]! * id);
      const xi0 = Math.min(15, toInt8(f(x0 + 8.5)));
      const xi1 = Math.min(15, toInt8(f(x1 + 8.5)));
      out[o + 2 + j] = (xi0 | (xi1 << 4)) & 0xff;
    }
  }
}

/** Min and max of 32 weights from FLT_MAX / -FLT_MAX starts, as Q4_1 and Q5_1 take them. */
function minMax32(x: Float32Array, xo: number): [number, number] {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < 32; j++) {
    const v = x[xo + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

function quantQ4_1(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const o = 20 * i;
    const [min, max] = minMax32(x, xo);
    const d = f(f(max - min) / 15);
    const id = d !== 0 ? f(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    view.setUint16(o + 2, f32ToF16(min), true);
    for (let j = 0; j < 16; j++) {
      const x0 = f(f(x[xo + j]! - min) * id);
      const x1 = f(f(x[xo + 16 + j]! - min) * id);
      const xi0 = Math.min(15, toInt8(f(x0 + 0.5)));
      const xi1 = Math.min(15, toInt8(f(x1 + 0.5)));
      out[o + 4 + j] = (xi0 | (xi1 << 4)) & 0xff;
    }
  }
}

function quantQ5_0(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const o = 22 * i;
    const max = signedAbsMax(x, xo, 32);
    const d = f(max / -16);
    const id = d !== 0 ? f(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const xi0 = Math.min(31, toInt8(f(f(x[xo + j]! * id) + 16.5))) & 0xff;
      const xi1 = Math.min(31, toInt8(f(f(x[xo + 16 + j]! * id) + 16.5))) & 0xff;
      out[o + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >> 4) << j;
      qh |= ((xi1 & 0x10) >> 4) << (j + 16);
    }
    view.setUint32(o + 2, qh >>> 0, true);
  }
}

function quantQ5_1(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const o = 24 * i;
    const [min, max] = minMax32(x, xo);
    const d = f(f(max - min) / 31);
    const id = d !== 0 ? f(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    view.setUint16(o + 2, f32ToF16(min), true);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const xi0 = toInt8(f(f(f(x[xo + j]! - min) * id) + 0.5)) & 0xff;
      const xi1 = toInt8(f(f(f(x[xo + 16 + j]! - min) * id) + 0.5)) & 0xff;
      out[o + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >> 4) << j;
      qh |= ((xi1 & 0x10) >> 4) << (j + 16);
    }
    view.setUint32(o + 4, qh >>> 0, true);
  }
}

/** amax of 32 weights as C's MAX macro takes it (a NaN weight wins and sticks). */
function absMax32(x: Float32Array, xo: number): number {
  let amax = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[xo + j]!);
    amax = amax > a ? amax : a;
  }
  return amax;
}

function quantQ8_0(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const o = 34 * i;
    const d = f(absMax32(x, xo) / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < 32; j++) view.setInt8(o + 2 + j, toInt8(roundAway(f(x[xo + j]! * id))));
  }
}

function quantQ8_1(x: Float32Array, nb: number, _out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const o = 36 * i;
    const d = f(absMax32(x, xo) / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const q = toInt8(roundAway(f(x[xo + j]! * id)));
      view.setInt8(o + 4 + j, q);
      sum += q;
    }
    view.setUint16(o + 2, f32ToF16(f(sum * d)), true);
  }
}

// ---------------------------------------------------------------- k-quant helpers

/**
 * make_qx_quants with a NULL weight array: symmetric quantization of n weights to [-nmax, nmax-1],
 * levels written to L (offset by nmax), then a search over 18 nearby scales for the one that best fits
 * in the weighted least-squares sense. Returns the scale.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number, rmseType: number): number {
  const max = signedAbsMax(x, xo, n);
  const amax = Math.abs(max);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) {
      const l = nearestInt(f(iscale * x[xo + i]!));
      L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
    }
    return f(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) {
    rmseType = -rmseType;
    returnEarly = true;
  }
  const weight = (v: number): number =>
    rmseType === 1 ? f(v * v) : rmseType === 2 ? 1 : rmseType === 3 ? Math.abs(v) : f(Math.sqrt(Math.abs(v)));
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    let l = nearestInt(f(iscale * v));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = weight(v);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 !== 0 ? f(sumlx / suml2) : 0;
  if (returnEarly) return suml2 > 0 ? f(0.5 * f(scale + f(1 / iscale))) : f(1 / iscale);
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(f(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      let l = nearestInt(f(iscale * v));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = weight(v);
      sumlx = f(sumlx + f(f(w * v) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(f(iscale * x[xo + i]!));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * make_q3_quants with do_rmse: symmetric levels in [-nmax, nmax-1] refined by up to 5 passes of
 * coordinate descent on the x^2-weighted error. Levels end in L offset by nmax; returns the scale.
 */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const max = signedAbsMax(x, xo, n);
  const amax = Math.abs(max);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    let l = nearestInt(f(iscale * v));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l;
    const w = f(v * v);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const w = f(v * v);
      const li = L[lo + i]!;
      let slx = f(sumlx - f(f(w * v) * li));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * li) * li));
        let newL = nearestInt(f(f(v * sl2) / slx));
        newL = Math.max(-nmax, Math.min(nmax - 1, newL));
        if (newL !== li) {
          slx = f(slx + f(f(w * v) * newL));
          sl2 = f(sl2 + f(f(w * newL) * newL));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[lo + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = L[lo + i]! + nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/**
 * make_qkx2_quants: asymmetric levels in [0, nmax] with a min, first from the plain range, then from
 * nstep+1 candidate scales each refit by weighted least squares (keeping the best weighted error).
 * Writes levels to L, returns [scale, -min].
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): [number, number] {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  const range = f(max - min);
  let iscale = f(nmax / range);
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = nearestInt(f(iscale * f(v - min)));
    L[lo + i] = Math.max(0, Math.min(nmax, l));
    const diff = f(f(f(scale * L[lo + i]!) + min) - v);
    bestError = f(bestError + f(weights[i]! * (useMad ? Math.abs(diff) : f(diff * diff))));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / range);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      let l = nearestInt(f(iscale * f(v - min)));
      l = Math.max(0, Math.min(nmax, l));
      Laux[i] = l;
      const w = weights[i]!;
      sumL = f(sumL + f(w * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
      sumXL = f(sumXL + f(f(w * l) * v));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        curError = f(curError + f(weights[i]! * (useMad ? Math.abs(diff) : f(diff * diff))));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** Scale and min of sub-block j from the 12 packed scale bytes at `s` (Q4_K / Q5_K layout). */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j]! & 63, b[s + j + 4]! & 63];
  return [(b[s + j + 4]! & 0xf) | ((b[s + j - 4]! >> 6) << 4), (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4)];
}

/** Packs 8 six-bit scales and 8 six-bit mins into 12 bytes at `s` (Q4_K / Q5_K layout). */
function packScalesK4(out: Uint8Array, s: number, ls: readonly number[], lm: readonly number[]): void {
  out.fill(0, s, s + 12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[s + j] = ls[j]!;
      out[s + j + 4] = lm[j]!;
    } else {
      out[s + j + 4] = (ls[j]! & 0xf) | ((lm[j]! & 0xf) << 4);
      out[s + j - 4] |= (ls[j]! >> 4) << 6;
      out[s + j] |= (lm[j]! >> 4) << 6;
    }
  }
}

/**
 * The shared core of Q4_K and Q5_K: 8 sub-blocks of 32 fitted with make_qkx2_quants, their scales and
 * mins quantized to 6 bits against the super-block's f16 d and dmin, then every weight re-quantized
 * with the rounded scales. Writes d, dmin and scales at `o`, leaves the levels in scratch.L.
 */
/** Working buffers of quantKx2Block, allocated once per row. */
interface Kx2Scratch {
  readonly L: Uint8Array;
  readonly Laux: Uint8Array;
  readonly weights: Float32Array;
  readonly scales: number[];
  readonly mins: number[];
}

function kx2Scratch(): Kx2Scratch {
  return { L: new Uint8Array(QK_K), Laux: new Uint8Array(32), weights: new Float32Array(32), scales: new Array<number>(8).fill(0), mins: new Array<number>(8).fill(0) };
}

function quantKx2Block(x: Float32Array, xo: number, nmax: number, rmin: number, nstep: number, out: Uint8Array, view: DataView, o: number, scratch: Kx2Scratch): void {
  const { L, Laux, weights, scales, mins } = scratch;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const so = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[so + l]! * x[so + l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[so + l]!));
    const [scale, min] = makeQkx2Quants(32, nmax, x, so, weights, L, 32 * j, Laux, rmin, f(0.1), nstep, false);
    scales[j] = scale;
    mins[j] = min;
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  // C stores nearest_int's result in a uint8_t before clamping, so a negative level wraps first.
  const ls = scales.map((s) => Math.min(63, nearestInt(f(invScale * s)) & 0xff));
  const lm = mins.map((m) => Math.min(63, nearestInt(f(invMin * m)) & 0xff));
  packScalesK4(out, o + 4, ls, lm);
  view.setUint16(o, f32ToF16(f(maxScale / 63)), true);
  view.setUint16(o + 2, f32ToF16(f(maxMin / 63)), true);
  const d16 = f16ToF32(view.getUint16(o, true));
  const dmin16 = f16ToF32(view.getUint16(o + 2, true));
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(out, o + 4, j);
    const d = f(d16 * sc);
    if (d === 0) continue;
    const dm = f(dmin16 * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(f(f(x[xo + 32 * j + ii]! + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

// ---------------------------------------------------------------- k-quants

function quantQ2_K(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(16);
  const weights = new Float32Array(16);
  const scales = new Array<number>(16);
  const mins = new Array<number>(16);
  const q4scale = 15;
  for (let i = 0; i < nb; i++) {
    const xo = QK_K * i;
    const o = 84 * i;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xo + 16 * j + l]!);
      const [scale, min] = makeQkx2Quants(16, 3, x, xo + 16 * j, weights, L, 16 * j, Laux, f(-0.5), f(0.1), 15, true);
      scales[j] = scale;
      mins[j] = min;
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    if (maxScale > 0) {
      const iscale = f(q4scale / maxScale);
      for (let j = 0; j < 16; j++) out[o + j] = nearestInt(f(iscale * scales[j]!)) & 0xff;
      view.setUint16(o + 80, f32ToF16(f(maxScale / q4scale)), true);
    } else {
      out.fill(0, o, o + 16);
      view.setUint16(o + 80, 0, true);
    }
    if (maxMin > 0) {
      const iscale = f(q4scale / maxMin);
      for (let j = 0; j < 16; j++) out[o + j] = (out[o + j]! | (nearestInt(f(iscale * mins[j]!)) << 4)) & 0xff;
      view.setUint16(o + 82, f32ToF16(f(maxMin / q4scale)), true);
    } else {
      view.setUint16(o + 82, 0, true);
    }
    const d16 = f16ToF32(view.getUint16(o + 80, true));
    const dmin16 = f16ToF32(view.getUint16(o + 82, true));
    for (let j = 0; j < 16; j++) {
      const d = f(d16 * (out[o + j]! & 0xf));
      if (d === 0) continue;
      const dm = f(dmin16 * (out[o + j]! >> 4));
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(f(x[xo + 16 * j + ii]! + dm) / d));
        L[16 * j + ii] = Math.max(0, Math.min(3, l));
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        out[o + 16 + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  }
}

function quantQ3_K(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  const L = new Int8Array(QK_K);
  const scales = new Array<number>(16);
  for (let i = 0; i < nb; i++) {
    const xo = QK_K * i;
    const o = 110 * i;
    const s = o + 96;
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, x, xo + 16 * j, L, 16 * j);
      const a = Math.abs(scales[j]!);
      if (a > amax) {
        amax = a;
        maxScale = scales[j]!;
      }
    }
    out.fill(0, s, s + 12);
    if (maxScale !== 0) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        // C keeps the level in an int8_t, so the clamp works on the wrapped value.
        let l = (nearestInt(f(iscale * scales[j]!)) << 24) >> 24;
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) out[s + j] = l & 0xf;
        else out[s + j - 8] = (out[s + j - 8]! | ((l & 0xf) << 4)) & 0xff;
        l >>= 4;
        out[s + (j % 4) + 8] = (out[s + (j % 4) + 8]! | (l << (2 * (j >> 2)))) & 0xff;
      }
      view.setUint16(o + 108, f32ToF16(f(1 / iscale)), true);
    } else {
      view.setUint16(o + 108, 0, true);
    }
    const dAll = f16ToF32(view.getUint16(o + 108, true));
    for (let j = 0; j < 16; j++) {
      const low = j < 8 ? out[s + j]! & 0xf : out[s + j - 8]! >> 4;
      const sc = (low | (((out[s + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4)) - 32;
      const d = f(dAll * sc);
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(x[xo + 16 * j + ii]! / d));
        L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    // The 3rd bit of the first 32 weights goes to bit 0 of hmask[0..31], the next 32 to bit 1, ...
    out.fill(0, o, o + 32);
    let m = 0;
    let hm = 1;
    for (let j = 0; j < QK_K; j++) {
      if (L[j]! > 3) {
        out[o + m] |= hm;
        L[j] = L[j]! - 4;
      }
      if (++m === 32) {
        m = 0;
        hm <<= 1;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        out[o + 32 + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  }
}

function quantQ4_K(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  const scratch = kx2Scratch();
  const L = scratch.L;
  for (let i = 0; i < nb; i++) {
    const o = 144 * i;
    quantKx2Block(x, QK_K * i, 15, -1, 20, out, view, o, scratch);
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[o + 16 + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
}

function quantQ5_K(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  const scratch = kx2Scratch();
  const L = scratch.L;
  for (let i = 0; i < nb; i++) {
    const o = 176 * i;
    quantKx2Block(x, QK_K * i, 31, f(-0.5), 15, out, view, o, scratch);
    const qh = o + 16;
    out.fill(0, qh, qh + 32);
    let ql = o + 48;
    let m1 = 1;
    let m2 = 2;
    for (let n = 0; n < QK_K; n += 64) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[n + j]!;
        if (l1 > 15) {
          l1 -= 16;
          out[qh + j] |= m1;
        }
        let l2 = L[n + j + 32]!;
        if (l2 > 15) {
          l2 -= 16;
          out[qh + j] |= m2;
        }
        out[ql + j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}

function quantQ6_K(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  const L = new Int8Array(QK_K);
  const scales = new Array<number>(16);
  for (let i = 0; i < nb; i++) {
    const xo = QK_K * i;
    const o = 210 * i;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, xo + 16 * ib, L, 16 * ib, 1);
      scales[ib] = scale;
      const a = Math.abs(scale);
      if (a > maxAbsScale) {
        maxAbsScale = a;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, o, o + 210);
      continue;
    }
    const iscale = f(-128 / maxScale);
    view.setUint16(o + 208, f32ToF16(f(1 / iscale)), true);
    for (let ib = 0; ib < 16; ib++) view.setInt8(o + 192 + ib, (Math.min(127, nearestInt(f(iscale * scales[ib]!))) << 24) >> 24);
    const d16 = f16ToF32(view.getUint16(o + 208, true));
    for (let j = 0; j < 16; j++) {
      const d = f(d16 * view.getInt8(o + 192 + j));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(x[xo + 16 * j + ii]! / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    let ql = o;
    let qh = o + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const a = L[j + l]!;
        const b = L[j + l + 32]!;
        const c = L[j + l + 64]!;
        const e = L[j + l + 96]!;
        out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
        out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  }
}

function quantQ8_K(x: Float32Array, nb: number, out: Uint8Array, view: DataView): void {
  for (let i = 0; i < nb; i++) {
    const xo = QK_K * i;
    const o = 292 * i;
    let max = 0;
    let amax = 0;
    for (let j = 0; j < QK_K; j++) {
      const a = Math.abs(x[xo + j]!);
      if (a > amax) {
        amax = a;
        max = x[xo + j]!;
      }
    }
    if (amax === 0) {
      // llama.cpp leaves bsums unwritten here; zero is the only sensible value for them.
      out.fill(0, o, o + 292);
      continue;
    }
    const iscale = f(-127 / max);
    for (let j = 0; j < QK_K; j++) view.setInt8(o + 4 + j, Math.min(127, nearestInt(f(iscale * x[xo + j]!))));
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let ii = 0; ii < 16; ii++) sum += view.getInt8(o + 4 + 16 * j + ii);
      view.setInt16(o + 260 + 2 * j, sum, true);
    }
    view.setFloat32(o, f(1 / iscale), true);
  }
}

// ---------------------------------------------------------------- floats and dispatch

function quantF32(x: Float32Array, n: number, _out: Uint8Array, view: DataView): void {
  for (let i = 0; i < n; i++) view.setFloat32(4 * i, x[i]!, true);
}

function quantF16(x: Float32Array, n: number, _out: Uint8Array, view: DataView): void {
  const h = f32ArrayToF16(x.subarray(0, n));
  for (let i = 0; i < n; i++) view.setUint16(2 * i, h[i]!, true);
}

function quantBF16(x: Float32Array, n: number, _out: Uint8Array, view: DataView): void {
  const h = f32ArrayToBF16(x.subarray(0, n));
  for (let i = 0; i < n; i++) view.setUint16(2 * i, h[i]!, true);
}

/** The quantizer of every type pocketllm can write. */
const QUANTIZERS: ReadonlyMap<GGMLType, BlockQuantizer> = new Map<GGMLType, BlockQuantizer>([
  [GGMLType.F32, quantF32],
  [GGMLType.F16, quantF16],
  [GGMLType.BF16, quantBF16],
  [GGMLType.Q4_0, quantQ4_0],
  [GGMLType.Q4_1, quantQ4_1],
  [GGMLType.Q5_0, quantQ5_0],
  [GGMLType.Q5_1, quantQ5_1],
  [GGMLType.Q8_0, quantQ8_0],
  [GGMLType.Q8_1, quantQ8_1],
  [GGMLType.Q2_K, quantQ2_K],
  [GGMLType.Q3_K, quantQ3_K],
  [GGMLType.Q4_K, quantQ4_K],
  [GGMLType.Q5_K, quantQ5_K],
  [GGMLType.Q6_K, quantQ6_K],
  [GGMLType.Q8_K, quantQ8_K],
]);

/** True when quantizeRow can write `type`. */
export function canQuantize(type: GGMLType): boolean {
  return QUANTIZERS.has(type);
}

/**
 * Quantizes the weights of `src` (a whole number of blocks of `type`) into `dst` (allocated when
 * omitted, else at least the row's byte size) and returns the bytes written (a view of `dst`).
 */
export function quantizeRow(type: GGMLType, src: Float32Array, dst?: Uint8Array): Uint8Array {
  const traits = typeTraits(type);
  if (!traits) throw new Error(`cannot quantize: unknown GGML type id ${type}`);
  const quant = QUANTIZERS.get(type);
  if (!quant) throw new Error(`cannot quantize to ${traits.name}: pocketllm has no quantizer for it`);
  const n = src.length;
  if (n % traits.blockSize !== 0) throw new Error(`cannot quantize ${n} weights to ${traits.name}: not a multiple of its block of ${traits.blockSize}`);
  const nBlocks = n / traits.blockSize;
  const bytes = nBlocks * traits.blockBytes;
  const out = dst ?? new Uint8Array(bytes);
  if (out.length < bytes) throw new Error(`quantize destination holds ${out.length} bytes, ${traits.name} needs ${bytes}`);
  const row = out.subarray(0, bytes);
  quant(src, nBlocks, row, new DataView(row.buffer, row.byteOffset, bytes));
  return row;
}
