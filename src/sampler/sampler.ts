// The sampling chain that turns a row of logits into the next token, in llama.cpp's default order:
// repetition/frequency/presence penalties over the recent tokens, top-k, top-p, min-p, temperature,
// then a seeded draw (or greedy argmax when the temperature is 0).
import { rngCreate, rngNextFloat } from './rng.js';
import type { RngState } from './rng.js';

export interface SamplerOptions {
  /** Softmax temperature; <= 0 means greedy argmax, ties to the lowest id. Default 0.8. */
  temperature: number;
  /** Keep the k most likely tokens; <= 0 keeps all. Default 40. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability sums to >= p; >= 1 keeps all. Default 0.95. */
  topP: number;
  /** Keep tokens whose probability is >= minP times the top one's; <= 0 keeps all. Default 0.05. */
  minP: number;
  /** Divides positive logits and multiplies negative ones of recent tokens; 1 is off. Default 1. */
  repeatPenalty: number;
  /** Subtracted from a recent token's logit once per occurrence in the window. Default 0. */
  frequencyPenalty: number;
  /** Subtracted once from the logit of any token in the window. Default 0. */
  presencePenalty: number;
  /** How many of the latest accepted tokens the penalties look at; 0 = none, -1 = all. Default 64. */
  penaltyLastN: number;
  /** Seed of the random draw. Default: a fresh random seed per sampler (as llama.cpp's default). */
  seed: number;
}

/** llama.cpp's defaults (common_params_sampling), seed aside. */
export const DEFAULT_SAMPLER_OPTIONS: Readonly<Omit<SamplerOptions, 'seed'>> = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1.0,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyLastN: 64,
};

/** Options of the truncation filters alone. */
export type FilterOptions = Pick<SamplerOptions, 'topK' | 'topP' | 'minP'>;
/** Options of the penalties alone. */
export type PenaltyOptions = Pick<SamplerOptions, 'repeatPenalty' | 'frequencyPenalty' | 'presencePenalty'>;

/** Fills every option left undefined with its default; checks the values. */
export function resolveSamplerOptions(options: Partial<SamplerOptions> = {}): SamplerOptions {
  const o: SamplerOptions = {
    temperature: options.temperature ?? DEFAULT_SAMPLER_OPTIONS.temperature,
    topK: options.topK ?? DEFAULT_SAMPLER_OPTIONS.topK,
    topP: options.topP ?? DEFAULT_SAMPLER_OPTIONS.topP,
    minP: options.minP ?? DEFAULT_SAMPLER_OPTIONS.minP,
    repeatPenalty: options.repeatPenalty ?? DEFAULT_SAMPLER_OPTIONS.repeatPenalty,
    frequencyPenalty: options.frequencyPenalty ?? DEFAULT_SAMPLER_OPTIONS.frequencyPenalty,
    presencePenalty: options.presencePenalty ?? DEFAULT_SAMPLER_OPTIONS.presencePenalty,
    penaltyLastN: options.penaltyLastN ?? DEFAULT_SAMPLER_OPTIONS.penaltyLastN,
    seed: options.seed ?? Math.floor(Math.random() * 0x1_0000_0000),
  };
  for (const [name, v] of Object.entries(o)) {
    if (typeof v !== 'number' || Number.isNaN(v)) throw new RangeError(`sampler option ${name} must be a number, got ${String(v)}`);
  }
  if (!Number.isInteger(o.topK)) throw new RangeError(`sampler option topK must be an integer, got ${o.topK}`);
  if (!Number.isInteger(o.penaltyLastN) || o.penaltyLastN < -1) {
    throw new RangeError(`sampler option penaltyLastN must be an integer >= -1, got ${o.penaltyLastN}`);
  }
  if (!(o.repeatPenalty > 0)) throw new RangeError(`sampler option repeatPenalty must be > 0, got ${o.repeatPenalty}`);
  if (!Number.isSafeInteger(o.seed)) throw new RangeError(`sampler option seed must be a safe integer, got ${o.seed}`);
  return o;
}

/**
 * Applies the penalties in place, once per distinct token of `counts` (token -> occurrences in the
 * window), as llama.cpp's penalties sampler: the repeat penalty divides a positive logit and multiplies
 * a negative one, then count * frequency + presence is subtracted.
 */
export function applyPenalties(logits: Float32Array, counts: ReadonlyMap<number, number>, options: PenaltyOptions): void {
  const { repeatPenalty, frequencyPenalty, presencePenalty } = options;
  if (repeatPenalty === 1 && frequencyPenalty === 0 && presencePenalty === 0) return;
  for (const [token, count] of counts) {
    if (count <= 0 || token < 0 || token >= logits.length) continue;
    let l = logits[token]!;
    l = l <= 0 ? l * repeatPenalty : l / repeatPenalty;
    l -= count * frequencyPenalty + presencePenalty;
    logits[token] = l;
  }
}

/** Index of the largest logit, the lowest index among equals; NaN never wins. */
export function argmax(logits: Float32Array): number {
  if (logits.length === 0) throw new RangeError('cannot sample from an empty row of logits');
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * The candidates left after top-k, top-p and min-p, most likely first (ties: lowest id first). top-p
 * and min-p are computed on the distribution of the top-k survivors at temperature 1, as in llama.cpp
 * where the temperature comes after them. At least one token always survives.
 */
export function filterCandidates(logits: Float32Array, options: FilterOptions): Int32Array {
  const n = logits.length;
  if (n === 0) throw new RangeError('cannot sample from an empty row of logits');
  const { topK, topP, minP } = options;

  // top-k by partial selection, so a 150k vocabulary is never fully sorted when k is set.
  let ids = topK > 0 && topK < n ? selectTopK(logits, topK) : idsWithoutNaN(logits);
  if (ids.length === 0) ids = Int32Array.of(argmax(logits));
  const maxLogit = logits[maxOf(logits, ids)]!;

  // min-p keeps p >= minP * pmax, i.e. logit >= max + ln(minP): a prefix of the sorted order, so it
  // can prune before sorting.
  let sortedPrefix = ids;
  if (minP > 0 && minP <= 1) {
    const threshold = maxLogit + Math.log(minP);
    sortedPrefix = ids.filter((id) => logits[id]! >= threshold);
  }
  sortByLogitDesc(sortedPrefix, logits);

  if (topP < 1) {
    // Normaliser over all top-k survivors, not only the min-p ones: top-p comes first in the chain.
    let z = 0;
    for (let i = 0; i < ids.length; i++) z += Math.exp(logits[ids[i]!]! - maxLogit);
    let cum = 0;
    for (let i = 0; i < sortedPrefix.length; i++) {
      cum += Math.exp(logits[sortedPrefix[i]!]! - maxLogit) / z;
      if (cum >= topP) {
        sortedPrefix = sortedPrefix.subarray(0, i + 1);
        break;
      }
    }
  }
  return sortedPrefix.length > 0 ? sortedPrefix : Int32Array.of(ids[0]!);
}

/** Probabilities of `candidates` after dividing their logits by `temperature` (> 0). */
export function candidateProbabilities(logits: Float32Array, candidates: Int32Array, temperature: number): Float64Array {
  const probs = new Float64Array(candidates.length);
  let max = -Infinity;
  for (const id of candidates) max = Math.max(max, logits[id]! / temperature);
  let z = 0;
  for (let i = 0; i < candidates.length; i++) {
    const p = Math.exp(logits[candidates[i]!]! / temperature - max);
    probs[i] = p;
    z += p;
  }
  for (let i = 0; i < probs.length; i++) probs[i]! /= z;
  return probs;
}

/**
 * A sampler with its own RNG state and window of recent tokens. `accept` every token that enters the
 * context (prompt and generated) so the penalties see it.
 */
export class Sampler {
  readonly options: SamplerOptions;
  private rng: RngState;
  /** Ring buffer of the last `penaltyLastN` accepted tokens (unbounded list when -1). */
  private recent: number[] = [];
  private recentStart = 0;
  /** Occurrences of each token in the window. */
  private readonly counts = new Map<number, number>();
  /** Scratch copy of the logits, reused between calls, so the caller's row is never changed. */
  private scratch: Float32Array | undefined;

  constructor(options: Partial<SamplerOptions> = {}) {
    this.options = resolveSamplerOptions(options);
    this.rng = rngCreate(this.options.seed);
  }

  /** Picks the next token from a row of logits (length = vocabulary size). */
  sample(logits: Float32Array): number {
    const o = this.options;
    let row = logits;
    if (this.counts.size > 0 && !(o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0)) {
      if (this.scratch?.length !== logits.length) this.scratch = new Float32Array(logits.length);
      this.scratch.set(logits);
      row = this.scratch;
      applyPenalties(row, this.counts, o);
    }
    if (o.temperature <= 0) return argmax(row);

    const candidates = filterCandidates(row, o);
    if (candidates.length === 1) return candidates[0]!;
    const probs = candidateProbabilities(row, candidates, o.temperature);
    const u = rngNextFloat(this.rng);
    let cum = 0;
    for (let i = 0; i < probs.length; i++) {
      cum += probs[i]!;
      if (u < cum) return candidates[i]!;
    }
    // Rounding can leave the sum a hair under 1.
    return candidates[candidates.length - 1]!;
  }

  /** Records a token that entered the context. */
  accept(token: number): void {
    const lastN = this.options.penaltyLastN;
    if (lastN === 0) return;
    this.recent.push(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
    if (lastN > 0 && this.recent.length - this.recentStart > lastN) {
      const old = this.recent[this.recentStart++]!;
      const c = this.counts.get(old)! - 1;
      if (c === 0) this.counts.delete(old);
      else this.counts.set(old, c);
      // Compact now and then so the array does not grow without bound.
      if (this.recentStart > 4 * lastN + 1024) {
        this.recent = this.recent.slice(this.recentStart);
        this.recentStart = 0;
      }
    }
  }

  /** Forgets the recent tokens and restarts the random stream from the seed. */
  reset(): void {
    this.recent = [];
    this.recentStart = 0;
    this.counts.clear();
    this.rng = rngCreate(this.options.seed);
  }

  /** Occurrences of each token in the penalty window (for inspection and tests). */
  windowCounts(): ReadonlyMap<number, number> {
    return this.counts;
  }
}

/** Ids of the k largest logits (NaN excluded), in no particular order, via a size-k min-heap. */
function selectTopK(logits: Float32Array, k: number): Int32Array {
  const heap = new Int32Array(k);
  let size = 0;
  // "a is worse than b": lower logit, or equal logit and higher id (so low ids win ties).
  const worse = (a: number, b: number) => logits[a]! < logits[b]! || (logits[a] === logits[b] && a > b);
  const siftDown = (i: number) => {
    const x = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && worse(heap[r]!, heap[l]!) ? r : l;
      if (!worse(heap[c]!, x)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = x;
  };
  for (let id = 0; id < logits.length; id++) {
    if (Number.isNaN(logits[id]!)) continue;
    if (size < k) {
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(id, heap[p]!)) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = id;
    } else if (worse(heap[0]!, id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.subarray(0, size);
}

/** Every id whose logit is not NaN (one NaN would poison the softmax). */
function idsWithoutNaN(logits: Float32Array): Int32Array {
  const ids = new Int32Array(logits.length);
  let n = 0;
  for (let i = 0; i < logits.length; i++) if (!Number.isNaN(logits[i]!)) ids[n++] = i;
  return ids.subarray(0, n);
}

function maxOf(logits: Float32Array, ids: Int32Array): number {
  let best = ids[0]!;
  for (const id of ids) if (logits[id]! > logits[best]!) best = id;
  return best;
}

function sortByLogitDesc(ids: Int32Array, logits: Float32Array): void {
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
}
