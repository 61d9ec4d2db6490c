// `pocketllm synth --vocab llama3` on a shape with a smaller vocabulary: the model is widened to the
// real vocabulary (every id of the Llama 3 tokenizer stays valid) and the file loads and chats.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { synthCommand } from '../src/cli/synth.js';
import { loadModel } from '../src/engine/load.js';
import { captureOutput } from './support/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'pocketllm-synth-vocab-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('synth with a real vocabulary larger than the shape', () => {
  it('widens tiny-llama to the 128256 tokens of Llama 3 and the model chats through its template', async () => {
    const out = join(dir, 'tiny-l3.gguf');
    const r = await captureOutput(() => synthCommand(['--shape', 'tiny-llama', '--type', 'q8_0', '--vocab', 'llama3', '-o', out]));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/vocabulary size widened from 512 to 128256/);
    const model = await loadModel(out, { threads: 1 });
    try {
      expect(model.hparams.vocabSize).toBe(128256);
      expect(model.tokenizer.kind).toBe('gpt2');
      expect(model.tokenize('<|eot_id|>', { parseSpecial: true, addBos: false })).toEqual([128009]);
      const chat = model.chat({ system: 'Be brief.' });
      let pieces = 0;
      for await (const _ of chat.send('Hello', { maxTokens: 4, temperature: 0 })) pieces++;
      expect(pieces).toBeGreaterThan(0);
    } finally {
      await model.close();
    }
  });
});
