// Builds small synthetic models in memory for tests (src/synth with a minimal SentencePiece vocab).
import { memorySink } from '../../src/gguf/writer.js';
import { parseFileType } from '../../src/quant/quantize-model.js';
import { findShape } from '../../src/synth/shapes.js';
import { planSynth, writeSynth } from '../../src/synth/synth.js';
import { minimalSpmVocab } from '../../src/synth/vocab.js';

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
