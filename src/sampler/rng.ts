// A small seeded pseudo-random generator (xoshiro128**) whose whole state is a value the caller holds:
// the same seed gives the same draws on every platform, and nothing is global.

/** The four 32-bit words of xoshiro128** state. Never all zero. */
export interface RngState {
  readonly s: Uint32Array;
}

/**
 * Seeds a generator. Any integer in the safe range (negative ones too) is accepted; the two 32-bit
 * halves go through splitmix32 so that nearby seeds give unrelated streams.
 */
export function rngCreate(seed: number): RngState {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
  const mix = { x: (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0 };
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) s[i] = splitmix32(mix);
  // xoshiro is stuck at zero forever if every word is zero.
  if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1;
  return { s };
}

/** A copy of `state` that continues independently. */
export function rngClone(state: RngState): RngState {
  return { s: Uint32Array.from(state.s) };
}

/** Next 32 random bits as an unsigned integer, advancing `state`. */
export function rngNextUint32(state: RngState): number {
  const s = state.s;
  const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
  const t = s[1]! << 9;
  s[2]! ^= s[0]!;
  s[3]! ^= s[1]!;
  s[1]! ^= s[2]!;
  s[0]! ^= s[3]!;
  s[2]! ^= t;
  s[3] = rotl(s[3]!, 11);
  return result;
}

/** A uniform float in [0, 1) with 32 bits of randomness, advancing `state`. */
export function rngNextFloat(state: RngState): number {
  return rngNextUint32(state) / 0x1_0000_0000;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function splitmix32(m: { x: number }): number {
  m.x = (m.x + 0x9e3779b9) >>> 0;
  let z = m.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
