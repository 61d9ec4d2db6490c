// The wasm graph against a slow float64 TypeScript forward pass written from the equations
// (test/support/reference-forward.ts), on synthetic tiny-llama and tiny-qwen2 models (GQA, NEOX rope,
// q/k/v biases and tied embeddings for qwen2). F32 weights agree to rounding; quantized weights agree
// within the error that 8-bit activation quantization adds.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import { readGGUF } from '../src/gguf/reader.js';
import { readHParams } from '../src/model/hparams.js';
import { memoryStorage } from '../src/storage/memory.js';
import { ReferenceModel } from './support/reference-forward.js';
import { synthModelBytes } from './support/synth-model.js';

const CASES = [
  // Measured: F32 ~4e-7, quantized 0.013–0.017 on logits spreading to ±1.2–1.5.
  { shape: 'tiny-llama', type: 'f32', tolerance: 1e-5 },
  { shape: 'tiny-qwen2', type: 'f32', tolerance: 1e-5 },
  { shape: 'tiny-llama', type: 'q8_0', tolerance: 0.04 },
  { shape: 'tiny-qwen2', type: 'q4_0', tolerance: 0.04 },
  { shape: 'tiny-llama', type: 'q4_k_m', tolerance: 0.04 },
];

describe('graph vs float64 reference', () => {
  for (const c of CASES) {
    it(`${c.shape} ${c.type}: logits at 12 positions`, async () => {
      const bytes = await synthModelBytes(c.shape, c.type, 7);
      const file = await readGGUF(memoryStorage(bytes));
      const hp = readHParams(file);
      const ref = await ReferenceModel.load(file, memoryStorage(bytes), hp);
      const model = await loadModel(memoryStorage(bytes, `${c.shape}-${c.type}`), { batchSize: 5 });
      try {
        const tokens = [1, 300, 17, 42, 260, 5, 99, 400, 3, 77, 128, 511];
        const ours = model.evaluate(tokens, { all: true });
        let worst = 0;
        let spread = 0;
        for (let p = 0; p < tokens.length; p++) {
          const want = ref.step(tokens[p]!);
          for (let i = 0; i < hp.vocabSize; i++) {
            worst = Math.max(worst, Math.abs(ours[p * hp.vocabSize + i]! - want[i]!));
            spread = Math.max(spread, Math.abs(want[i]!));
          }
        }
        expect(spread).toBeGreaterThan(0.5); // the logits are not trivially flat
        expect(worst).toBeLessThan(c.tolerance);
      } finally {
        await model.close();
      }
    });
  }
});
