// Shared set-up of the kernel tests: the three builds (scalar, simd, relaxed) instantiated on one
// shared memory, a bump allocator for test buffers, a seeded PRNG and f16 helpers taken from the
// engine's Float16Array (a reference we did not write).
import { expect } from 'vitest';
import { dequantizeRow as tsDequantizeRow } from '../src/quant/dequantize.js';
import { rowBytes } from '../src/quant/formats.js';
import type { GGMLType } from '../src/quant/formats.js';
import { matmulKernelFor } from '../src/runtime/kernel-table.js';
import { createSharedMemory } from '../src/runtime/memory.js';
import { compileKernelVariant, instantiateKernels, KERNEL_VARIANTS, type KernelVariant } from '../src/runtime/kernels.js';
import type { KernelExports } from '../src/runtime/kernel-exports.js';
import { prng } from './support/prng.js';

export interface KernelBench {
  readonly memory: WebAssembly.Memory;
  readonly builds: readonly { readonly variant: KernelVariant; readonly k: KernelExports }[];
  readonly scalar: KernelExports;
  /** Allocates `bytes` (64-aligned) and returns the pointer; memory grows as needed. */
  alloc(bytes: number): number;
  /** Frees everything allocated since the bench was made. */
  reset(): void;
  u8(ptr: number, n: number): Uint8Array;
  f32(ptr: number, n: number): Float32Array;
  i32(ptr: number, n: number): Int32Array;
  u16(ptr: number, n: number): Uint16Array;
}

export async function kernelBench(): Promise<KernelBench> {
  const memory = createSharedMemory(64);
  const builds: { variant: KernelVariant; k: KernelExports }[] = [];
  for (const variant of KERNEL_VARIANTS) {
    const module = await compileKernelVariant(variant);
    if (!module) throw new Error(`${variant} build does not validate on this engine`);
    builds.push({ variant, k: instantiateKernels(module, memory) });
  }
  const base = Math.ceil(Math.max(...builds.map((b) => b.k.heapBase())) / 64) * 64;
  let top = base;
  const view = <T>(C: new (b: ArrayBufferLike, o: number, n: number) => T) => (ptr: number, n: number): T => new C(memory.buffer, ptr, n);
  return {
    memory,
    builds,
    scalar: builds[0]!.k,
    alloc(bytes: number): number {
      const ptr = top;
      top = Math.ceil((top + bytes) / 64) * 64 + 64; // a gap catches overruns in the checks below
      const need = top - memory.buffer.byteLength;
      if (need > 0) memory.grow(Math.ceil(need / 65536));
      return ptr;
    },
    reset(): void {
      top = base;
    },
    u8: view(Uint8Array),
    f32: view(Float32Array),
    i32: view(Int32Array),
    u16: view(Uint16Array),
  };
}


export { prng };

/** Gaussian-ish values (sum of uniforms), mean 0, sd about `scale`. */
export function randomF32(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() + rand() + rand() - 1.5) * 2 * scale;
  return out;
}

const f16Scratch = new Float16Array(1);
const f16Bits = new Uint16Array(f16Scratch.buffer);

/** IEEE half bits of x, rounded by the engine's Float16Array (round to nearest even). */
export function toF16Bits(x: number): number {
  f16Scratch[0] = x;
  return f16Bits[0]!;
}

export function fromF16Bits(h: number): number {
  f16Bits[0] = h;
  return f16Scratch[0]!;
}

/** Largest |a[i] - b[i]|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Offsets of the f16 scale fields in a block of each quantized type, and whether each may be negative. */
const SCALE_FIELDS: Partial<Record<number, readonly (readonly [number, boolean])[]>> = {
  2: [[0, true]], // Q4_0 d
  3: [[0, false], [2, true]], // Q4_1 d, m
  6: [[0, true]], // Q5_0 d
  7: [[0, false], [2, true]], // Q5_1 d, m
  8: [[0, true]], // Q8_0 d
  10: [[80, false], [82, false]], // Q2_K d, dmin
  11: [[108, true]], // Q3_K d
  12: [[0, false], [2, false]], // Q4_K d, dmin
  13: [[0, false], [2, false]], // Q5_K d, dmin
  14: [[208, true]], // Q6_K d
};

/**
 * `n` weights of `type` as random but valid bytes: quants and packed scales are random bytes, so every
 * bit pattern of them occurs; f16 scales are sane values (about 1e-3..1e-2); floats are finite.
 */
export function randomWeights(type: number, n: number, rand: () => number, blockSize: number, blockBytes: number): Uint8Array {
  const nb = n / blockSize;
  const bytes = new Uint8Array(nb * blockBytes);
  const view = new DataView(bytes.buffer);
  if (type === 0) {
    randomF32(rand, n, 0.5).forEach((v, i) => view.setFloat32(4 * i, v, true));
    return bytes;
  }
  if (type === 1 || type === 30) {
    randomF32(rand, n, 0.5).forEach((v, i) => {
      const bits = type === 1 ? toF16Bits(v) : new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16;
      view.setUint16(2 * i, bits, true);
    });
    return bytes;
  }
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  if (type === 15) {
    for (let b = 0; b < nb; b++) view.setFloat32(b * blockBytes, (rand() - 0.5) * 0.02, true);
    return bytes;
  }
  const fields = SCALE_FIELDS[type];
  if (!fields) throw new Error(`no random block recipe for type ${type}`);
  for (let b = 0; b < nb; b++) {
    for (const [off, signed] of fields) {
      const mag = 0.001 + rand() * 0.009;
      view.setUint16(b * blockBytes + off, toF16Bits(signed && rand() < 0.5 ? -mag : mag), true);
    }
  }
  return bytes;
}

/**
 * In every build: repacking the file-layout matrix `file` (rows x cols of `type`) writes exactly the
 * bytes `want` (as the formats.ts prose describes them, padding rows included: the destination is
 * filled with garbage first), and each row read back from the packed copy equals the TypeScript
 * reference dequantizer's reading of the file row.
 */
export function expectRepackedAsDocumented(bench: KernelBench, type: GGMLType, file: Uint8Array, want: Uint8Array, rows: number, cols: number, name: string): void {
  const entry = matmulKernelFor(type);
  expect(entry.matrixBytes(rows, cols)).toBe(want.length);
  for (const { variant, k } of bench.builds) {
    bench.reset();
    const src = bench.alloc(file.length), dst = bench.alloc(want.length), row = bench.alloc(4 * cols);
    bench.u8(src, file.length).set(file);
    bench.u8(dst, want.length).fill(0xa5); // padding must be written, not left over
    entry.repack(k, src, dst, rows, cols);
    expect(Buffer.from(bench.u8(dst, want.length)).equals(Buffer.from(want)), `${name} ${rows}x${cols} ${variant}`).toBe(true);
    for (let r = 0; r < rows; r++) {
      expect(k.dequantizePackedRow(type, dst, cols, r, row)).toBe(0);
      const ref = tsDequantizeRow(type, file.subarray(r * rowBytes(type, cols), (r + 1) * rowBytes(type, cols)), cols);
      expect([...bench.f32(row, cols)], `${name} row ${r} ${variant}`).toEqual([...ref]);
    }
  }
}
