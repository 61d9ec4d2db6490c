// Setup the attention prefill benchmarks (attention-prefill.ts, attention-kv-prefill.ts) share: the
// prompt and head layouts, the kernel builds asked for on the command line, a bump allocator in wasm
// memory, the random f32 inputs, and the interleaved one-pass-against-tiled timing and its report line.
import { compileKernelVariant, instantiateKernels, KERNEL_VARIANTS } from '../src/runtime/kernels.js';
import type { KernelVariant } from '../src/runtime/kernels.js';
import type { AttentionKernel, KernelExports } from '../src/runtime/kernel-exports.js';

export const PROMPT = 512;
export const CHUNK = 64;
export const DECODE_STEPS = 32;
export const SHAPES = [
  { name: 'qwen2.5-0.5b', nHeads: 14, nKVHeads: 2, headDim: 64 },
  { name: 'llama-3.2-1b', nHeads: 32, nKVHeads: 8, headDim: 64 },
  { name: 'head dim 128, GQA 4', nHeads: 16, nKVHeads: 4, headDim: 128 },
] as const;
export type AttentionShape = (typeof SHAPES)[number];

/** One attention layer's buffers in wasm memory (byte offsets) and the arguments every call repeats. */
export interface AttentionLayer {
  shape: AttentionShape;
  q: number;
  out: number;
  scratch: number;
  qRow: number;
  kvStride: number;
  scale: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The builds named on the command line (default simd), each instantiated over memory. */
export async function* kernelBuilds(memory: WebAssembly.Memory): AsyncGenerator<{ variant: KernelVariant; k: KernelExports }> {
  const asked = process.argv.slice(2).filter((a): a is KernelVariant => (KERNEL_VARIANTS as readonly string[]).includes(a));
  const variants: readonly KernelVariant[] = asked.length ? asked : ['simd'];
  for (const variant of variants) {
    const module = await compileKernelVariant(variant);
    if (!module) throw new Error(`the ${variant} build does not validate on this engine`);
    yield { variant, k: instantiateKernels(module, memory) };
  }
}

/** Grows memory to hold `bytes` past the kernels' heap base; returns take(n): the next 64-byte aligned n bytes. */
export function heapArena(memory: WebAssembly.Memory, k: KernelExports, bytes: number): (n: number) => number {
  const base = Math.ceil(k.heapBase() / 64) * 64;
  const need = base + bytes - memory.buffer.byteLength;
  if (need > 0) memory.grow(Math.ceil(need / 65536));
  let p = base;
  return (n: number) => ((p += Math.ceil(n / 64) * 64), p - Math.ceil(n / 64) * 64);
}

/** Fills each [offset, f32 count] region with the same seeded values in (-1.5, 1.5) on every run. */
export function fillRandom(memory: WebAssembly.Memory, regions: readonly (readonly [number, number])[]): void {
  const f = new Float32Array(memory.buffer);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32 - 0.5);
  for (const [ptr, n] of regions) {
    for (let i = 0; i < n; i++) f[ptr / 4 + i] = rand() * 3;
  }
}

/**
 * runs timings (ms) of one kernel over the prompt in calls of chunk queries continuing the cache
 * (chunk = 1: DECODE_STEPS decode steps at the end of the prompt, one query seeing ~PROMPT keys).
 */
function timeCalls(run: AttentionKernel, layer: AttentionLayer, kc: number, vc: number, chunk: number, runs: number): number[] {
  const { shape: s, q, out, scratch, qRow, kvStride, scale } = layer;
  const ms: number[] = [];
  const from = chunk === 1 ? PROMPT - DECODE_STEPS : 0;
  for (let r = 0; r < runs + 2; r++) {
    const t0 = performance.now();
    for (let t = from; t < PROMPT; t += chunk) {
      run(q + 4 * t * qRow, kc, vc, out + 4 * t * qRow, chunk, s.nHeads, s.nKVHeads, s.headDim, kvStride, t, scale, scratch, 0, s.nHeads);
    }
    if (r >= 2) ms.push(performance.now() - t0); // two warm-up runs
  }
  return ms;
}

/**
 * Times the one-pass and the tiled kernel, 3 x runs each, for calls of CHUNK, of PROMPT and decode
 * steps, and prints one line per call size: `label`, what was run, both medians and ranges, the ratio.
 */
export function compareOnePassTiled(label: string, onePass: AttentionKernel, tiled: AttentionKernel, layer: AttentionLayer, kc: number, vc: number, runs: number): void {
  const s = layer.shape;
  for (const chunk of [CHUNK, PROMPT, 1]) {
    // Interleaved, so that a burst of load from elsewhere hits both kernels alike.
    const old: number[] = [], tiledMs: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      old.push(...timeCalls(onePass, layer, kc, vc, chunk, runs));
      tiledMs.push(...timeCalls(tiled, layer, kc, vc, chunk, runs));
    }
    const fmt = (xs: number[]) => `${median(xs).toFixed(2)} ms (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
    const what = chunk === 1 ? `${DECODE_STEPS} decode steps after ${PROMPT - DECODE_STEPS} tokens` : `${PROMPT} tokens in calls of ${chunk}`;
    console.log(
      `${label} ${s.name} (${s.nHeads}/${s.nKVHeads} heads, dim ${s.headDim}), ${what}: ` +
        `one-pass ${fmt(old)}, tiled ${fmt(tiledMs)}, ratio ${(median(tiledMs) / median(old)).toFixed(2)}`,
    );
  }
}
