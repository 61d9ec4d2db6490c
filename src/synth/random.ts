// Seeded pseudo-random numbers for synthetic weights: xoshiro128** seeded through splitmix32, with
// uniform and normal samples. Each tensor draws from its own stream, derived from the run's seed and
// the tensor's name, so a tensor's bytes do not depend on the order tensors are written in.

/** One splitmix32 step: spreads a 32-bit state into a well-mixed 32-bit output. */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const INV_2_32 = 1 / 4294967296;
/** Scales a signed 32-bit integer into [-1, 1). */
const INV_2_31 = 1 / 2147483648;

/** xoshiro128**: 128 bits of state, period 2^128 - 1, fast in 32-bit JavaScript arithmetic. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed` is any integer (only its low 32 bits and the 21 bits above count); `stream` picks a sub-stream. */
  constructor(seed: number, stream = 0) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = splitmix32(lo ^ Math.imul(stream >>> 0, 0x27d4eb2f));
    this.s0 = x;
    x = splitmix32(x ^ hi);
    this.s1 = x;
    x = splitmix32(x ^ stream);
    this.s2 = x;
    x = splitmix32(x);
    this.s3 = x;
    // An all-zero state would stay zero forever.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator for one named stream (a tensor) of a run with `seed`. */
  static forName(seed: number, name: string): Rng {
    return new Rng(seed, hashString(name));
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextU32() * INV_2_32;
  }

  /** Uniform integer in [0, n) for n up to 2^32 (a scaled uniform; its tiny bias is irrelevant here). */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /**
   * Fills `out` with normal samples of the given mean and standard deviation (Marsaglia's polar
   * method; the state lives in locals through the loop, which is several times faster in V8 than
   * calling nextU32 per draw). An odd-length fill drops the second value of its last pair, so a
   * sample sequence depends on how it was cut into fills: callers fill whole rows.
   */
  fillNormal(out: Float32Array, mean: number, std: number): void {
    let s0 = this.s0 | 0;
    let s1 = this.s1 | 0;
    let s2 = this.s2 | 0;
    let s3 = this.s3 | 0;
    const n = out.length;
    let i = 0;
    while (i < n) {
      // Two uniforms in (-1, 1) from two xoshiro128** outputs.
      let r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const u = r * INV_2_31;
      r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const v = r * INV_2_31;
      const q = u * u + v * v;
      if (q >= 1 || q === 0) continue;
      const m = std * Math.sqrt((-2 * Math.log(q)) / q);
      out[i++] = mean + u * m;
      if (i < n) out[i++] = mean + v * m;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /** Fills `out` with uniform random bytes. */
  fillBytes(out: Uint8Array): void {
    let s0 = this.s0 | 0;
    let s1 = this.s1 | 0;
    let s2 = this.s2 | 0;
    let s3 = this.s3 | 0;
    const n = out.length;
    const whole = n & ~3;
    const words = (out.byteOffset & 3) === 0 ? new Int32Array(out.buffer, out.byteOffset, whole >> 2) : undefined;
    for (let i = 0; i < whole; i += 4) {
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      // Little-endian byte order either way, so the bytes do not depend on the buffer's alignment.
      if (words) words[i >> 2] = r;
      else {
        out[i] = r & 0xff;
        out[i + 1] = (r >>> 8) & 0xff;
        out[i + 2] = (r >>> 16) & 0xff;
        out[i + 3] = r >>> 24;
      }
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    if (whole < n) {
      let v = this.nextU32();
      for (let i = whole; i < n; i++, v >>>= 8) out[i] = v & 0xff;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
