// Kernel variant selection: loads the scalar, SIMD128 and relaxed-SIMD builds of the kernel module,
// keeps the best one that both validates and passes a known-answer self-test on this engine (Node 20's
// flagged relaxed dot, for one, validates but returns wrong sums; the relaxed build also needs
// f32x4.relaxed_madd to be fused, as the probe checks), and instantiates it on the shared memory.
// POCKETLLM_KERNELS=scalar|simd|relaxed forces a variant.
import type { KernelExports } from './kernel-exports.js';

export type KernelVariant = 'scalar' | 'simd' | 'relaxed';
export const KERNEL_VARIANTS: readonly KernelVariant[] = ['scalar', 'simd', 'relaxed'];
/** Preference order, best first. */
const PREFERENCE: readonly KernelVariant[] = ['relaxed', 'simd', 'scalar'];

export class KernelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelLoadError';
  }
}

const compiled = new Map<KernelVariant, Promise<WebAssembly.Module | null>>();

async function readWasmBytes(variant: KernelVariant): Promise<Uint8Array<ArrayBuffer>> {
  const url = new URL(`../../wasm/kernels-${variant}.wasm`, import.meta.url);
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (proc?.versions?.node && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(url));
  }
  const res = await fetch(url);
  if (!res.ok) throw new KernelLoadError(`cannot fetch ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Compiles a variant once per process; null when this engine cannot validate it. */
export function compileKernelVariant(variant: KernelVariant): Promise<WebAssembly.Module | null> {
  let p = compiled.get(variant);
  if (!p) {
    p = readWasmBytes(variant).then((bytes) => (WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null));
    compiled.set(variant, p);
  }
  return p;
}

/** Instantiates a compiled kernel module on `memory`. */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}

/**
 * Runs the known-answer probe: a dot product of signed bytes with 7-bit bytes, whose result the
 * relaxed instruction must give exactly (the relaxed build also spoils the sum when its multiply-add
 * is not fused). Uses 64 bytes just above the module's static data.
 */
export function kernelSelfTest(k: KernelExports, memory: WebAssembly.Memory): boolean {
  const base = (k.heapBase() + 15) & ~15;
  const n = 64;
  const bytes = new Int8Array(memory.buffer, base, 2 * n);
  let expected = 0;
  for (let i = 0; i < n; i++) {
    const a = ((i * 37) % 255) - 127; // -127..127
    const b = (i * 53) % 128; // 0..127
    bytes[i] = a;
    bytes[n + i] = b;
    expected += a * b;
  }
  return k.selfTestDotI8(base, base + n, n) === expected;
}

export interface SelectedKernels {
  readonly variant: KernelVariant;
  readonly module: WebAssembly.Module;
  readonly exports: KernelExports;
  /** Why better variants were passed over. */
  readonly rejected: readonly string[];
}

function forcedVariant(): KernelVariant | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.POCKETLLM_KERNELS;
  if (!v) return undefined;
  if (!(KERNEL_VARIANTS as readonly string[]).includes(v)) {
    throw new KernelLoadError(`POCKETLLM_KERNELS must be one of ${KERNEL_VARIANTS.join(', ')}; got "${v}"`);
  }
  return v as KernelVariant;
}

/** Picks and instantiates the best working kernel variant (or the one asked for) on `memory`. */
export async function selectKernels(memory: WebAssembly.Memory, want?: KernelVariant): Promise<SelectedKernels> {
  const forced = want ?? forcedVariant();
  const candidates = forced ? [forced] : PREFERENCE;
  const rejected: string[] = [];
  for (const variant of candidates) {
    const module = await compileKernelVariant(variant);
    if (!module) {
      rejected.push(`${variant}: this engine does not validate it`);
      continue;
    }
    const exports = instantiateKernels(module, memory);
    if (!kernelSelfTest(exports, memory)) {
      rejected.push(`${variant}: failed the known-answer self-test`);
      continue;
    }
    return { variant, module, exports, rejected };
  }
  throw new KernelLoadError(`no usable kernel variant (${rejected.join('; ')})`);
}
