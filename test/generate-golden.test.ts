// Generation against llama.cpp: greedy tokens and text identical to the golden files, and the logits of
// every position within 0.01 (F32 files) or 0.05 (F16 and quantized files), on every kernel build.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import { KERNEL_VARIANTS } from '../src/runtime/kernels.js';
import { loadGolden, maxAbsDiff } from './support/golden.js';

const STORIES = [
  { base: 'bos.greedy60', tolerance: 0.01 },
  { base: 'once_upon_a_time.greedy64', tolerance: 0.01 },
  { base: 'once_upon_a_time.greedy64.F16', tolerance: 0.05 },
  { base: 'once_upon_a_time.greedy64.Q8_0', tolerance: 0.05 },
  { base: 'once_upon_a_time.greedy64.Q4_0', tolerance: 0.05 },
];

const opened: Model[] = [];
afterAll(async () => {
  for (const m of opened) await m.close();
});

async function open(path: string, kernels: (typeof KERNEL_VARIANTS)[number]): Promise<Model> {
  const m = await loadModel(path, { kernels });
  opened.push(m);
  return m;
}

describe.each(KERNEL_VARIANTS)('golden generation, %s kernels', (variant) => {
  for (const { base, tolerance } of STORIES) {
    it(`stories260K ${base}: greedy tokens, text and logits`, async () => {
      const g = loadGolden('stories260K', base);
      const model = await open(g.model, variant);
      expect(model.kernelVariant).toBe(variant);
      // The prompt text tokenizes as llama.cpp did.
      if (g.prompt) expect(model.tokenize(g.prompt)).toEqual(g.promptTokens);

      const all = model.evaluate([...g.promptTokens, ...g.generatedTokens.slice(0, -1)], { all: true });
      expect(all.length).toBe(g.logits.length);
      expect(maxAbsDiff(all, g.logits)).toBeLessThan(tolerance);

      const out = await model.complete(g.promptTokens, { temperature: 0, maxTokens: g.generatedTokens.length });
      expect(out.tokens).toEqual(g.generatedTokens);
      expect(out.text).toBe(g.text);
    });
  }

  for (const base of ['bos.greedy32', 'once_upon_a_time.greedy32']) {
    it(`llama-2-tiny-random ${base}: logits at every position (F16 weights)`, async () => {
      const g = loadGolden('llama-2-tiny-random', base);
      const model = await open(g.model, variant);
      if (g.prompt) expect(model.tokenize(g.prompt)).toEqual(g.promptTokens);
      const all = model.evaluate([...g.promptTokens, ...g.generatedTokens.slice(0, -1)], { all: true });
      expect(maxAbsDiff(all, g.logits)).toBeLessThan(0.05);
    });
  }
});

describe('prefill and decode agree', () => {
  it('a batch prefill gives the same logits as feeding tokens one by one', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const batched = await open(g.model, 'simd');
    const single = await loadModel(g.model, { kernels: 'simd', batchSize: 1 });
    opened.push(single);
    const tokens = [...g.promptTokens, ...g.generatedTokens.slice(0, 20)];
    const a = batched.evaluate(tokens, { all: true });
    const b = single.evaluate(tokens, { all: true });
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
  });
});
