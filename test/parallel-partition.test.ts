// Work partition and throughput model of the worker pool (src/parallel): ranges cover everything once,
// in order, aligned, in proportion to the weights; speeds follow measurements.
import { describe, expect, it } from 'vitest';
import { CONTROL_LAYOUT, ControlBlock } from '../src/parallel/control-block.js';
import { partitionRange } from '../src/parallel/partition.js';
import { ThroughputModel } from '../src/parallel/throughput.js';

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
    expect(L.OP_PTR0 + 2 * L.OP_PTR_COUNT).toBeLessThanOrEqual(L.OP_INTS);
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
