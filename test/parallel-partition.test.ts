// Work partition and throughput model of the worker pool (src/parallel): ranges cover everything once,
// in order, aligned, in proportion to the weights; speeds follow measurements; the barrier estimate
// follows the lowest costs within its bounds; a share given as a count scaled by blocks runs the
// right sub-range; polling ends on a change or on time.
import { describe, expect, it } from 'vitest';
import { CONTROL_LAYOUT, ControlBlock } from '../src/parallel/control-block.js';
import { partitionRange } from '../src/parallel/partition.js';
import { KindSpeeds, ThroughputModel } from '../src/parallel/throughput.js';
import { BARRIER_MAX_MS, BARRIER_MIN_MS, BarrierCost } from '../src/parallel/barrier-cost.js';
import { runShare, spinPoll, SPIN_CHANGED, SPIN_TIMEOUT } from '../src/parallel/run-share.js';

function split(total: number, weights: number[], align: number): [number, number][] {
  const out = new Int32Array(2 * weights.length + 4).fill(-7);
  partitionRange(total, weights, weights.length, align, out, 2);
  return weights.map((_, p) => [out[2 + 2 * p]!, out[3 + 2 * p]!]);
}

/** Every index of [0, total) in exactly one range, ranges consecutive. */
function expectCover(ranges: [number, number][], total: number): void {
  let at = 0;
  for (const [s, e] of ranges) {
    expect(s).toBe(at);
    expect(e).toBeGreaterThanOrEqual(s);
    at = e;
  }
  expect(at).toBe(total);
}

describe('partitionRange', () => {
  it('splits evenly on aligned boundaries', () => {
    expect(split(576, [1, 1], 16)).toEqual([[0, 288], [288, 576]]);
    expect(split(64, [1, 1, 1], 16)).toEqual([[0, 16], [16, 48], [48, 64]]);
    expect(split(10, [1, 1, 1], 1)).toEqual([[0, 3], [3, 7], [7, 10]]);
  });

  it('gives shares proportional to the weights, every boundary but the end a multiple of align', () => {
    const total = 49152;
    const weights = [5, 1, 2.5];
    const ranges = split(total, weights, 16);
    expectCover(ranges, total);
    const sum = weights.reduce((a, b) => a + b, 0);
    ranges.forEach(([s, e], p) => {
      expect(Math.abs((e - s) / total - weights[p]! / sum)).toBeLessThan(16 / total + 1e-9);
      if (p < ranges.length - 1) expect(e % 16).toBe(0);
    });
  });

  it('covers odd totals, totals smaller than the alignment and zero weights', () => {
    for (const total of [0, 1, 15, 17, 33, 100, 1000, 32001]) {
      for (const weights of [[1], [1, 1], [3, 1, 1, 1], [0, 1], [1, 0, 1], [1e-9, 1], [0, 0]]) {
        for (const align of [1, 16]) {
          const ranges = split(total, weights, align);
          expectCover(ranges, total);
          weights.forEach((w, p) => {
            if (!(w > 0) && weights.some((x) => x > 0)) expect(ranges[p]![1] - ranges[p]![0]).toBe(0);
          });
        }
      }
    }
  });

  it('gives everything to participant 0 when no weight is positive', () => {
    expect(split(40, [0, 0, Number.NaN], 16)).toEqual([[0, 40], [40, 40], [40, 40]]);
  });
});

describe('ThroughputModel', () => {
  it('starts even, takes calibration as is and moves towards new measurements', () => {
    const t = new ThroughputModel(2);
    expect(t.shares()).toEqual([0.5, 0.5]);
    expect(t.soloMs(1000)).toBe(Infinity);
    t.set(0, 1000, 1);
    t.set(1, 1000, 4);
    expect(t.shares()[0]).toBeCloseTo(0.8, 10);
    expect(t.soloMs(2000)).toBeCloseTo(2, 10);
    for (let i = 0; i < 50; i++) t.observe(1, 1000, 1);
    expect(t.shares()[1]).toBeCloseTo(0.5, 3);
    // Too short to measure, or no work: ignored.
    t.observe(0, 1000, 0.001);
    t.observe(0, 0, 5);
    expect(t.speeds[0]).toBe(1000);
  });
});

describe('control block', () => {
  it('lays its regions out without overlap, within the buffer', () => {
    const L = CONTROL_LAYOUT;
    expect(L.PARTICIPANTS).toBeGreaterThan(L.FAULT_CLAIM);
    expect(L.OPS).toBe(L.PARTICIPANTS + L.PARTICIPANT_INTS * L.MAX_PARTICIPANTS);
    expect(L.OP_PTR0 + 2 * L.OP_PTR_COUNT).toBeLessThanOrEqual(L.OP_COUNT_SCALE);
    expect(L.OP_COUNT_SCALE).toBeLessThan(L.OP_INTS);
    expect(L.RANGES).toBe(L.OPS + L.OP_INTS * L.MAX_OPS);
    expect(L.F64_BYTE_OFFSET % 8).toBe(0);
    expect(L.F64_BYTE_OFFSET).toBeGreaterThanOrEqual(4 * (L.RANGES + 2 * L.MAX_OPS * L.MAX_PARTICIPANTS));
    expect(L.ERROR_BYTES).toBe(L.F64_BYTE_OFFSET + 8 * (L.ELAPSED + L.MAX_PARTICIPANTS));
    const b = new ControlBlock();
    expect(b.buffer.byteLength).toBe(L.BYTE_LENGTH);
    expect(b.fault()).toBeUndefined();
    b.markLost(2, 'worker thread 2 is gone: killed');
    b.markLost(1, 'second report is ignored');
    expect(b.fault()).toEqual({ participant: 2, kind: 'lost', message: 'worker thread 2 is gone: killed' });
    expect(b.participantState(2)).toBe(L.STATE_GONE);
  });
});

describe('barrier cost estimate', () => {
  it('starts from the probe within bounds, then follows the window minima', () => {
    expect(new BarrierCost(5).ms).toBe(BARRIER_MAX_MS);
    expect(new BarrierCost(Number.NaN).ms).toBe(BARRIER_MAX_MS);
    expect(new BarrierCost(0).ms).toBe(BARRIER_MIN_MS);
    const b = new BarrierCost(0.08);
    // Windows whose minimum is 0.004 ms, with wake-ups of 0.5 ms among them: the minima win.
    for (let i = 0; i < 16 * 40; i++) b.observe(i % 3 === 0 ? 0.5 : 0.004 + (i % 5) * 0.001);
    expect(b.ms).toBeCloseTo(0.004, 4);
    // A spell of nothing but slow splits raises it, but never past the bound.
    for (let i = 0; i < 16 * 40; i++) b.observe(3);
    expect(b.ms).toBe(BARRIER_MAX_MS);
    b.observe(Number.NaN);
    b.observe(-1);
    expect(b.ms).toBe(BARRIER_MAX_MS);
  });
});

describe('per-kind speeds', () => {
  it('use a kind\'s own timings, and the matmul speed for a kind not timed yet', () => {
    const matmul = new ThroughputModel(2);
    matmul.set(0, 1000, 1);
    const k = new KindSpeeds(3);
    expect(k.soloMs(2, 500, matmul)).toBeCloseTo(0.5, 10);
    k.observe(2, 100, 1);
    expect(k.soloMs(2, 500, matmul)).toBeCloseTo(5, 10);
    k.observe(1, 100, 0.0001); // below the clock's reach: ignored
    expect(k.soloMs(1, 500, matmul)).toBeCloseTo(0.5, 10);
  });
});

describe('runShare with a scaled count', () => {
  it('passes a participant its blocks as an element count and moves the pointers by whole blocks', () => {
    const L = CONTROL_LAYOUT;
    const b = new ControlBlock();
    const calls: number[][] = [];
    const fn = (...a: number[]): void => void calls.push(a.slice(0, 4));
    // 18 blocks of 32 values (34 bytes each), participant 1 gets blocks [10, 18).
    b.setCountOp(0, 0, 2, [[0, 32 * 4], [1, 34]], 32);
    for (const [a, v] of [1000, 5000, 576, 1].entries()) b.setArg(0, a, v);
    b.i32[b.rangeBase(0) + 2] = 10;
    b.i32[b.rangeBase(0) + 3] = 18;
    b.i32[L.OP_COUNT] = 1;
    runShare([fn], b.i32, b.f64, L, 1, new Float64Array(L.MAX_ARGS));
    expect(calls).toEqual([[1000 + 10 * 128, 5000 + 10 * 34, 8 * 32, 1]]);
  });
});

describe('spinPoll', () => {
  it('returns when the value changes, or when its time is up', async () => {
    const i32 = new Int32Array(new SharedArrayBuffer(8));
    const t0 = performance.now();
    const r = spinPoll(i32, 0, 0, 2); // nobody changes it: timeout, or preempted if the core was taken
    expect(r).not.toBe(SPIN_CHANGED);
    if (r === SPIN_TIMEOUT) expect(performance.now() - t0).toBeGreaterThanOrEqual(2);
    expect(spinPoll(i32, 0, 0, 0)).toBe(SPIN_TIMEOUT);
    i32[0] = 1;
    expect(spinPoll(i32, 0, 0, 1000)).toBe(SPIN_CHANGED);
  });
});
