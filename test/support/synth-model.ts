// Builds small synthetic models in memory for tests (src/synth with a minimal SentencePiece vocab).
import { join } from 'node:path';
import { fileSink, memorySink } from '../../src/gguf/writer.js';
import { parseFileType } from '../../src/quant/quantize-model.js';
import { findShape } from '../../src/synth/shapes.js';
import { planSynth, writeSynth } from '../../src/synth/synth.js';
import { minimalSpmVocab, padVocab } from '../../src/synth/vocab.js';
import { loadLenmlVocab } from '../../src/synth/vocab-hf.js';

export async function synthModelBytes(shapeName: string, type: string, seed = 1): Promise<Uint8Array> {
  const shape = findShape(shapeName);
  if (!shape) throw new Error(`no shape ${shapeName}`);
  const fileType = parseFileType(type);
  if (!fileType) throw new Error(`no file type ${type}`);
  const plan = planSynth({ shape, fileType, seed, vocab: minimalSpmVocab(shape.vocabSize) });
  const sink = memorySink();
  await writeSynth(plan, sink);
  return sink.bytes();
}

/**
 * Writes a tiny-llama-shaped chat model with the real Llama 3 vocabulary and chat template (tied
 * embeddings halve the file: the 128k-row embedding is most of it) and returns its path.
 */
export async function writeLlama3ChatModel(dir: string, seed: number): Promise<string> {
  const shape = { ...findShape('tiny-llama')!, vocabSize: 128256, tiedEmbeddings: true };
  const vocab = padVocab(await loadLenmlVocab('llama3'), shape.vocabSize, 'llama3 vocabulary');
  const plan = planSynth({ shape, fileType: parseFileType('q8_0')!, seed, vocab });
  const path = join(dir, `tiny-llama3-chat-q8_0-${seed}.gguf`);
  await writeSynth(plan, await fileSink(path));
  return path;
}
