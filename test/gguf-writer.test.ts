// The GGUF writer: reading then writing every shared model reproduces it byte for byte, streaming the
// tensor data from the source file.
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGGUF } from '../src/gguf/reader.js';
import { fileSink, memorySink, tensorFromStorage, writeGGUF } from '../src/gguf/writer.js';
import { openFileStorage } from '../src/storage/node.js';
import { MODELS } from './support/golden.js';

describe('GGUF writer round trip', () => {
  for (const name of readdirSync(MODELS).filter((n) => n.endsWith('.gguf'))) {
    it(`${name} is reproduced byte for byte`, async () => {
      const storage = await openFileStorage(join(MODELS, name));
      const f = await readGGUF(storage);
      const sink = memorySink();
      const written = await writeGGUF(sink, f.kv, f.tensors.map((t) => tensorFromStorage(t, storage, 4096)), { version: f.version as 3 });
      await storage.close();
      const original = new Uint8Array(readFileSync(join(MODELS, name)));
      expect(written).toBe(original.length);
      expect(Buffer.compare(sink.bytes(), original)).toBe(0);
    });
  }

  it('writes to a file through the buffered file sink', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocketllm-writer-'));
    try {
      const src = join(MODELS, 'stories260K-Q4_0.gguf');
      const storage = await openFileStorage(src);
      const f = await readGGUF(storage);
      const out = join(dir, 'copy.gguf');
      const sink = await fileSink(out);
      await writeGGUF(sink, f.kv, f.tensors.map((t) => tensorFromStorage(t, storage)));
      await sink.close();
      await storage.close();
      expect(Buffer.compare(readFileSync(out), readFileSync(src))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a tensor source that gives the wrong number of bytes', async () => {
    const sink = memorySink();
    await expect(writeGGUF(sink, [], [{ name: 't', shape: [32], type: 0, data: () => [new Uint8Array(100)] }])).rejects.toThrow(/gave 100 bytes, expected 128/);
  });
});
