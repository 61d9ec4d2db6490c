// Prefill attention, one-pass kernel (attention: a score per visible position) against the tiled one
// (attentionTiled: a few tiles of workspace): one layer's attention over a 512-token prompt on one
// thread, for real head layouts, as the engine runs it (chunks of 64 queries continuing the cache) and
// as one call of 512 queries, and DECODE_STEPS one-token calls at the end of the prompt. Prints the
// median and range of 3 x RUNS timings (the two kernels interleaved) and the workspace bytes each
// needs per thread. Run: npx vite-node bench/attention-prefill.ts [simd|relaxed|scalar ...]
import { createSharedMemory } from '../src/runtime/memory.js';
import { compareOnePassTiled, fillRandom, heapArena, kernelBuilds, PROMPT, SHAPES } from './attention-common.js';

const RUNS = 7;

async function main(): Promise<void> {
  const memory = createSharedMemory(64);
  for await (const { variant, k } of kernelBuilds(memory)) {
    for (const s of SHAPES) {
      const kvStride = s.nKVHeads * s.headDim, qRow = s.nHeads * s.headDim;
      const bytes = 4 * (2 * PROMPT * qRow + 2 * PROMPT * kvStride) + 4 * (PROMPT + 16) + k.attentionTiledScratchBytes() + 4096;
      const take = heapArena(memory, k, bytes);
      const q = take(4 * PROMPT * qRow), kc = take(4 * PROMPT * kvStride), vc = take(4 * PROMPT * kvStride), out = take(4 * PROMPT * qRow);
      const scratch = take(Math.max(4 * (PROMPT + 16), k.attentionTiledScratchBytes()));
      fillRandom(memory, [[q, PROMPT * qRow], [kc, PROMPT * kvStride], [vc, PROMPT * kvStride]]);
      const scale = Math.fround(1 / Math.sqrt(s.headDim));
      compareOnePassTiled(variant, k.attention, k.attentionTiled, { shape: s, q, out, scratch, qRow, kvStride, scale }, kc, vc, RUNS);
      // The engine allocates one workspace per head (the most threads an attention split can use).
      const slots = (ws: (ctx: number) => number) => [512, 4096, 32768].map((ctx) => `${ctx}: ${(s.nHeads * ws(ctx) / 1024).toFixed(0)} KiB`).join(', ');
      console.log(`  workspaces (${s.nHeads} slots) by context, one-pass ${slots((ctx) => 4 * (ctx + 16))}; tiled ${slots(() => k.attentionTiledScratchBytes())}`);
    }
  }
}

await main();
