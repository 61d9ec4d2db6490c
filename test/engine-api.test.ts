// The public Model API on stories260K: prompt longer than the context, the context filling up, abort
// mid-generation (the model stays usable), seeded sampling, stop strings, prefix reuse, close.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGGUF } from '../src/gguf/reader.js';
import { GGMLType } from '../src/quant/formats.js';
import { memoryStorage } from '../src/storage/memory.js';
import { loadModel } from '../src/index.js';
import type { Model } from '../src/index.js';
import { MODELS, loadGolden } from './support/golden.js';

let model: Model;
beforeAll(async () => {
  model = await loadModel(join(MODELS, 'stories260K.gguf'), { contextLength: 128 });
});
afterAll(async () => {
  await model.close();
});

describe('Model API', () => {
  it('reports the hyperparameters and the context length', () => {
    expect(model.hparams.embeddingLength).toBe(64);
    expect(model.contextLength).toBe(128);
    expect(model.memoryUsage().kv).toBe(2 * 5 * 128 * 32 * 4);
  });

  it('a prompt longer than the context is a clear error, and the model still works after', async () => {
    const long = 'Once upon a time '.repeat(60);
    await expect(model.complete(long, { maxTokens: 4 })).rejects.toThrow(/prompt has \d+ tokens, which does not fit in the context of 128 tokens/);
    const out = await model.complete('Once upon a time', { maxTokens: 3, temperature: 0 });
    expect(out.tokens).toEqual([432, 383, 286]);
  });

  it('stops with reason contextFull when the context fills up', async () => {
    const out = await model.complete('Once upon a time', { maxTokens: 1000, temperature: 0 });
    expect(out.stats.stopReason).toBe('contextFull');
    expect(out.stats.promptTokens + out.stats.generatedTokens).toBe(128 + 1);
  });

  it('abort mid-generation rejects promptly and leaves the model usable', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = (async () => {
      for await (const piece of model.generate('Once upon a time', { maxTokens: 100, temperature: 0, signal: controller.signal })) {
        seen.push(piece.token);
        if (seen.length === 5) controller.abort();
      }
    })();
    await expect(run).rejects.toThrow(/abort/i);
    expect(seen.length).toBe(5);
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const out = await model.complete('Once upon a time', { maxTokens: 8, temperature: 0 });
    expect(out.tokens).toEqual(g.generatedTokens.slice(0, 8));
  });

  it('an already aborted signal rejects before any work', async () => {
    await expect(model.complete('Once', { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
  });

  it('the same seed gives the same text, another seed other text', async () => {
    const opts = { maxTokens: 40, temperature: 1.0, topK: 0, topP: 1, minP: 0 };
    const a = await model.complete('Once upon a time', { ...opts, seed: 7 });
    const b = await model.complete('Once upon a time', { ...opts, seed: 7 });
    const c = await model.complete('Once upon a time', { ...opts, seed: 8 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('a stop string ends the text before it, even when it spans several tokens', async () => {
    // Greedy text: ", there was a little girl named Lily. She loved to play outside in the park..."
    const out = await model.complete('Once upon a time', { maxTokens: 64, temperature: 0, stop: ['named Li'] });
    expect(out.text).toBe(', there was a little girl ');
    expect(out.stats.stopReason).toBe('stop');
  });

  it('a prompt that extends the cached tokens prefills only the new ones', async () => {
    const firstIds = model.tokenize('Lily saw a cat');
    await model.complete(firstIds, { maxTokens: 1, temperature: 0 });
    // Only BOS can be shared with whatever an earlier test left in the cache.
    expect(model.lastStats!.prefilledTokens).toBeGreaterThanOrEqual(firstIds.length - 1);
    const ids = model.tokenize('Lily saw a cat, and it was happy');
    expect(ids.slice(0, firstIds.length)).toEqual(firstIds);
    await model.complete(ids, { maxTokens: 1, temperature: 0 });
    expect(model.lastStats!.prefilledTokens).toBe(ids.length - firstIds.length);
    expect(model.lastStats!.promptTokens).toBe(ids.length);
  });

  it('evaluate returns the logits of the last position', () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const logits = model.evaluate(g.promptTokens);
    expect(logits.length).toBe(512);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    expect(best).toBe(g.generatedTokens[0]);
  });

  it('tokenize and detokenize round trip', () => {
    expect(model.tokenize('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(model.detokenize(model.tokenize('Lily saw a big, red ball.'))).toBe('Lily saw a big, red ball.');
  });

  it('a closed model refuses work', async () => {
    const m = await loadModel(join(MODELS, 'stories260K.gguf'));
    await m.close();
    expect(() => m.evaluate([1])).toThrow(/closed/);
  });

  it('F16 weights holding an infinity are refused at load with an error naming the tensor', async () => {
    const bytes = new Uint8Array(await readFile(join(MODELS, 'stories260K-F16.gguf')));
    const file = await readGGUF(memoryStorage(bytes));
    const t = file.tensors.find((x) => x.type === GGMLType.F16 && x.shape.length === 2 && x.name.startsWith('blk.0.'))!;
    new DataView(bytes.buffer).setUint16(t.offset + 2 * 5, 0x7c00, true); // weight 5 := +inf
    await expect(loadModel(memoryStorage(bytes, 'inf.gguf'), { threads: 1 })).rejects.toThrow(
      new RegExp(`tensor "${t.name.replace(/\./g, '\\.')}": .*F16x8: it holds an infinity or NaN`),
    );
  });
});
