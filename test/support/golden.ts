// Loading of the llama.cpp golden outputs in ../shared/golden (see SUMMARY.md there): token ids,
// text, and the full logits row of every position.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SHARED = join(__dirname, '..', '..', '..', 'shared');
export const MODELS = join(SHARED, 'models');
export const GOLDEN = join(SHARED, 'golden');

export interface Golden {
  readonly name: string;
  readonly model: string;
  readonly prompt: string;
  readonly promptTokens: number[];
  readonly generatedTokens: number[];
  readonly text: string;
  readonly nVocab: number;
  /** Row i = logits after token i of promptTokens ++ generatedTokens. */
  readonly logits: Float32Array;
  readonly rows: number;
}

export function loadGolden(dir: string, base: string): Golden {
  const json = JSON.parse(readFileSync(join(GOLDEN, dir, `${base}.json`), 'utf8'));
  const raw = readFileSync(join(GOLDEN, dir, `${base}.logits.f32`));
  const logits = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const nVocab: number = json.n_vocab;
  return {
    name: `${dir}/${base}`,
    model: join(MODELS, json.model),
    prompt: json.prompt,
    promptTokens: json.prompt_tokens,
    generatedTokens: json.generated_tokens,
    text: json.generated_text ?? json.text,
    nVocab,
    logits,
    rows: logits.length / nVocab,
  };
}

/** Largest absolute difference between two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
