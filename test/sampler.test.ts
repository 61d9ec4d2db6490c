// The seeded RNG against the xoshiro128** reference vector, and the sampling chain on hand-made logits
// whose expected candidate sets and penalised values follow from llama.cpp's definitions.
import { describe, expect, it } from 'vitest';
import { rngCreate, rngNextFloat, rngNextUint32 } from '../src/sampler/rng.js';
import {
  applyPenalties,
  argmax,
  candidateProbabilities,
  DEFAULT_SAMPLER_OPTIONS,
  filterCandidates,
  resolveSamplerOptions,
  Sampler,
} from '../src/sampler/sampler.js';

/** Logits whose softmax is exactly `probs` (up to float rounding). */
function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => Math.log(p));
}

function randomLogits(n: number, seed: number): Float32Array {
  const rng = rngCreate(seed);
  return Float32Array.from({ length: n }, () => rngNextFloat(rng) * 10 - 5);
}

const NO_FILTERS = { topK: 0, topP: 1, minP: 0 };

describe('rng', () => {
  it('matches the xoshiro128** reference output for state {1, 2, 3, 4}', () => {
    // First outputs of Blackman & Vigna's reference xoshiro128starstar.c from s = {1, 2, 3, 4}.
    const state = { s: Uint32Array.of(1, 2, 3, 4) };
    const out = Array.from({ length: 10 }, () => rngNextUint32(state));
    expect(out).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804]);
  });

  it('repeats a stream for a seed, differs across seeds, and stays in [0, 1)', () => {
    const a = rngCreate(42);
    const b = rngCreate(42);
    const c = rngCreate(43);
    const sa = Array.from({ length: 100 }, () => rngNextFloat(a));
    const sb = Array.from({ length: 100 }, () => rngNextFloat(b));
    const sc = Array.from({ length: 100 }, () => rngNextFloat(c));
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
    expect(() => rngCreate(1.5)).toThrow(RangeError);
  });
});

describe('filters', () => {
  it('top-k keeps the k largest logits, most likely first, ties to the lowest id', () => {
    const logits = Float32Array.of(1, 5, 3, 5, 2, 4);
    expect(Array.from(filterCandidates(logits, { ...NO_FILTERS, topK: 3 }))).toEqual([1, 3, 5]);
    expect(Array.from(filterCandidates(Float32Array.of(2, 2, 2, 1), { ...NO_FILTERS, topK: 2 }))).toEqual([0, 1]);
    expect(Array.from(filterCandidates(logits, { ...NO_FILTERS, topK: 0 }))).toEqual([1, 3, 5, 2, 4, 0]);
    expect(Array.from(filterCandidates(logits, { ...NO_FILTERS, topK: 100 }))).toEqual([1, 3, 5, 2, 4, 0]);
  });

  it('top-k by partial selection agrees with a full sort on a 150k vocabulary', () => {
    const logits = randomLogits(150_000, 7);
    const got = Array.from(filterCandidates(logits, { ...NO_FILTERS, topK: 40 }));
    const want = Array.from(logits.keys())
      .sort((a, b) => logits[b]! - logits[a]! || a - b)
      .slice(0, 40);
    expect(got).toEqual(want);
  });

  it('top-p keeps the smallest most-likely set whose probability reaches p', () => {
    const logits = logitsOf([0.5, 0.2, 0.15, 0.1, 0.05]);
    const keep = (topP: number) => Array.from(filterCandidates(logits, { ...NO_FILTERS, topP }));
    expect(keep(0.45)).toEqual([0]);
    expect(keep(0.69)).toEqual([0, 1]);
    expect(keep(0.71)).toEqual([0, 1, 2]);
    expect(keep(0.9)).toEqual([0, 1, 2, 3]);
    expect(keep(0.99)).toEqual([0, 1, 2, 3, 4]);
    expect(keep(0)).toEqual([0]);
  });

  it('top-p measures probability among the top-k survivors', () => {
    // After top-k 2 the probabilities are 0.4/0.7 = 0.571 and 0.3/0.7 = 0.429.
    const logits = logitsOf([0.4, 0.3, 0.2, 0.1]);
    expect(Array.from(filterCandidates(logits, { topK: 2, topP: 0.55, minP: 0 }))).toEqual([0]);
    expect(Array.from(filterCandidates(logits, { topK: 2, topP: 0.6, minP: 0 }))).toEqual([0, 1]);
    // Without top-k the sums are 0.4, 0.7, 0.9, 1.0.
    expect(Array.from(filterCandidates(logits, { topK: 0, topP: 0.6, minP: 0 }))).toEqual([0, 1]);
    expect(Array.from(filterCandidates(logits, { topK: 0, topP: 0.75, minP: 0 }))).toEqual([0, 1, 2]);
  });

  it('min-p keeps tokens with p >= minP * pmax', () => {
    const logits = logitsOf([0.05, 0.5, 0.15, 0.2, 0.1]);
    const keep = (minP: number) => Array.from(filterCandidates(logits, { ...NO_FILTERS, minP }));
    expect(keep(0.25)).toEqual([1, 3, 2]); // threshold 0.125
    expect(keep(0.19)).toEqual([1, 3, 2, 4]); // threshold 0.095
    expect(keep(0.05)).toEqual([1, 3, 2, 4, 0]); // threshold 0.025
    expect(keep(0.9)).toEqual([1]);
  });

  it('top-p and min-p together keep the shorter of the two sets', () => {
    const logits = logitsOf([0.5, 0.2, 0.15, 0.1, 0.05]);
    expect(Array.from(filterCandidates(logits, { topK: 0, topP: 0.95, minP: 0.25 }))).toEqual([0, 1, 2]);
    expect(Array.from(filterCandidates(logits, { topK: 0, topP: 0.69, minP: 0.05 }))).toEqual([0, 1]);
  });

  it('never drops NaN into the candidates', () => {
    const logits = Float32Array.of(NaN, 1, 2);
    expect(Array.from(filterCandidates(logits, NO_FILTERS))).toEqual([2, 1]);
    expect(argmax(logits)).toBe(2);
  });
});

describe('penalties', () => {
  it('change exactly the logits of tokens in the window, by llama.cpp\'s amounts', () => {
    const logits = Float32Array.of(2, -2, 1, 0.5, 3);
    const counts = new Map([
      [0, 2],
      [1, 1],
      [2, 1],
    ]);
    applyPenalties(logits, counts, { repeatPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 0.25 });
    // id 0: 2 / 2 - (2 * 0.5 + 0.25); id 1: -2 * 2 - (0.5 + 0.25); id 2: 1 / 2 - 0.75; ids 3, 4 untouched.
    expect(Array.from(logits)).toEqual([-0.25, -4.75, -0.25, 0.5, 3]);
  });

  it('count only the last penaltyLastN accepted tokens', () => {
    const s = new Sampler({ penaltyLastN: 3, repeatPenalty: 2, seed: 1 });
    for (const t of [0, 1, 0, 2]) s.accept(t);
    expect(new Map(s.windowCounts())).toEqual(new Map([[1, 1], [0, 1], [2, 1]]));
    s.accept(2);
    expect(new Map(s.windowCounts())).toEqual(new Map([[0, 1], [2, 2]]));
    const none = new Sampler({ penaltyLastN: 0, seed: 1 });
    none.accept(5);
    expect(none.windowCounts().size).toBe(0);
  });

  it('steer greedy decoding without touching the caller\'s logits', () => {
    const logits = Float32Array.of(3, 2.9, 0);
    const s = new Sampler({ temperature: 0, repeatPenalty: 1.1, seed: 1 });
    expect(s.sample(logits)).toBe(0);
    s.accept(0);
    // 3 / 1.1 = 2.727 < 2.9
    expect(s.sample(logits)).toBe(1);
    expect(Array.from(logits)).toEqual([3, Math.fround(2.9), 0]);
    s.reset();
    expect(s.sample(logits)).toBe(0);
  });
});

describe('sampler', () => {
  it('is greedy at temperature 0 with ties to the lowest id', () => {
    const s = new Sampler({ temperature: 0, seed: 3 });
    expect(s.sample(Float32Array.of(1, 5, 5, 2))).toBe(1);
    expect(s.sample(Float32Array.of(-1, -1))).toBe(0);
    expect(new Sampler({ temperature: -1, seed: 3 }).sample(Float32Array.of(0, 0, 9))).toBe(2);
  });

  it('reproduces a sequence for the same seed and differs for another', () => {
    const draw = (seed: number) => {
      const s = new Sampler({ seed, topK: 0, topP: 1, minP: 0, temperature: 1 });
      const out: number[] = [];
      for (let i = 0; i < 64; i++) out.push(s.sample(randomLogits(50, 1000 + i)));
      return out;
    };
    expect(draw(11)).toEqual(draw(11));
    expect(draw(11)).not.toEqual(draw(12));
    const s = new Sampler({ seed: 5, temperature: 1, topK: 0, topP: 1, minP: 0 });
    const logits = randomLogits(50, 9);
    const first = Array.from({ length: 20 }, () => s.sample(logits));
    s.reset();
    expect(Array.from({ length: 20 }, () => s.sample(logits))).toEqual(first);
  });

  it('only ever returns tokens that survive the filters', () => {
    const logits = logitsOf([0.05, 0.5, 0.15, 0.2, 0.1]);
    const s = new Sampler({ seed: 8, temperature: 1.5, topK: 0, topP: 1, minP: 0.25 });
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(s.sample(logits));
    expect([...seen].sort()).toEqual([1, 2, 3]);
  });

  it('draws with the softmax frequencies, scaled by the temperature (binomial tolerance)', () => {
    const probs = [0.1, 0.2, 0.3, 0.4];
    const logits = logitsOf(probs);
    const n = 20_000;
    for (const temperature of [1, 2, 0.5]) {
      const s = new Sampler({ seed: 2024 + Math.round(temperature * 10), temperature, topK: 0, topP: 1, minP: 0 });
      const hits = new Array<number>(probs.length).fill(0);
      for (let i = 0; i < n; i++) hits[s.sample(logits)]!++;
      // softmax(log p / T) is proportional to p^(1/T).
      const w = probs.map((p) => p ** (1 / temperature));
      const z = w.reduce((a, b) => a + b, 0);
      w.forEach((wi, i) => {
        const p = wi / z;
        const sigma = Math.sqrt(n * p * (1 - p));
        expect(Math.abs(hits[i]! - n * p)).toBeLessThan(5 * sigma);
      });
    }
  });

  it('gives candidate probabilities that sum to 1', () => {
    const logits = logitsOf([0.1, 0.2, 0.3, 0.4]);
    const probs = candidateProbabilities(logits, Int32Array.of(3, 2, 1, 0), 1);
    expect(Array.from(probs).map((p) => +p.toFixed(6))).toEqual([0.4, 0.3, 0.2, 0.1]);
  });

  it('samples a 150k vocabulary with the default chain quickly', () => {
    const logits = randomLogits(150_000, 3);
    const s = new Sampler({ seed: 1 });
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) s.accept(s.sample(logits));
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('documents llama.cpp\'s defaults and fills undefined options with them', () => {
    expect(DEFAULT_SAMPLER_OPTIONS).toEqual({
      temperature: 0.8,
      topK: 40,
      topP: 0.95,
      minP: 0.05,
      repeatPenalty: 1,
      frequencyPenalty: 0,
      presencePenalty: 0,
      penaltyLastN: 64,
    });
    const o = resolveSamplerOptions({ temperature: undefined, seed: 9 });
    expect(o.temperature).toBe(0.8);
    expect(o.seed).toBe(9);
    expect(Number.isSafeInteger(resolveSamplerOptions().seed)).toBe(true);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(RangeError);
    expect(() => new Sampler({ repeatPenalty: 0 })).toThrow(RangeError);
    expect(() => new Sampler({ temperature: NaN })).toThrow(RangeError);
    expect(() => new Sampler({ seed: 0 }).sample(new Float32Array(0))).toThrow(RangeError);
  });
});
