// Synthetic models for the parallel tests: a real shape (or a made-up one) with seeded random weights,
// written to memory by src/synth and opened through memory storage.
import { memorySink } from '../src/gguf/writer.js';
import { parseFileType } from '../src/quant/quantize-model.js';
import { memoryStorage } from '../src/storage/memory.js';
import type { Storage } from '../src/storage/storage.js';
import { findShape } from '../src/synth/shapes.js';
import type { ModelShape } from '../src/synth/shapes.js';
import { planSynth, writeSynth } from '../src/synth/synth.js';
import { minimalSpmVocab } from '../src/synth/vocab.js';

/** The bytes of a synthetic GGUF of `shape` (a shape name or a shape) at file type `type`. */
export async function synthBytes(shape: string | ModelShape, type: string, seed = 1): Promise<Uint8Array> {
  const s = typeof shape === 'string' ? findShape(shape) : shape;
  if (!s) throw new Error(`no synth shape ${String(shape)}`);
  const fileType = parseFileType(type);
  if (!fileType) throw new Error(`no file type ${type}`);
  const plan = planSynth({ shape: s, fileType, seed, vocab: minimalSpmVocab(s.vocabSize), weights: 'auto' });
  const sink = memorySink();
  await writeSynth(plan, sink);
  return sink.bytes();
}

/** A fresh Storage over the same bytes (loadModel closes the storage it is given). */
export function storageOf(bytes: Uint8Array, name: string): Storage {
  return memoryStorage(bytes, name);
}
