// The synthetic models the end-to-end benchmarks run: random weights in the shapes (and per-tensor
// types) of real models, written once with the synth module into os.tmpdir()/pocketllm-bench-models
// and reused while a file of the planned size is there.
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileSink } from '../src/gguf/writer.js';
import { parseFileType } from '../src/quant/quantize-model.js';
import { planSynth, writeSynth } from '../src/synth/synth.js';
import { findShape } from '../src/synth/shapes.js';
import { minimalSpmVocab } from '../src/synth/vocab.js';

export const BENCH_MODEL_DIR = join(os.tmpdir(), 'pocketllm-bench-models');
/** Fixed, so every machine benchmarks the same bytes. */
const SEED = 0;

export interface BenchModel {
  readonly shape: string;
  readonly type: string;
  readonly path: string;
  readonly bytes: number;
  /** True when the file was written by this call (not reused). */
  readonly written: boolean;
  readonly writeSeconds: number;
}

/** Path of the synthetic `shape` model of file type `type`, writing it first if it is missing. */
export async function ensureBenchModel(shapeName: string, typeName: string): Promise<BenchModel> {
  const shape = findShape(shapeName);
  if (!shape) throw new Error(`unknown synth shape ${shapeName}`);
  const fileType = parseFileType(typeName);
  if (!fileType) throw new Error(`unknown file type ${typeName}`);
  // Direct blocks: the reference k-quant search would take minutes on a 1B shape.
  const plan = planSynth({ shape, fileType, seed: SEED, vocab: minimalSpmVocab(shape.vocabSize), weights: 'direct' });
  const path = join(BENCH_MODEL_DIR, `${shape.name}-${fileType.name.toLowerCase()}-seed${SEED}.gguf`);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.size === plan.fileBytes) {
    return { shape: shape.name, type: fileType.name, path, bytes: plan.fileBytes, written: false, writeSeconds: 0 };
  }
  await mkdir(BENCH_MODEL_DIR, { recursive: true });
  const partial = `${path}.partial-${process.pid}`;
  const t0 = performance.now();
  try {
    await writeSynth(plan, await fileSink(partial));
    await rename(partial, path);
  } catch (e) {
    await unlink(partial).catch(() => undefined);
    throw e;
  }
  return { shape: shape.name, type: fileType.name, path, bytes: plan.fileBytes, written: true, writeSeconds: (performance.now() - t0) / 1000 };
}
