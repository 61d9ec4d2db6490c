// The memory flags of the CLIs: `run --memory-budget` streams and prints where the weights are,
// `bench --memory-budget none,SIZE` measures each budget in one report, bad sizes exit 2 naming the
// flag, and `info` says where embedding rows come from.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchCommand } from '../src/cli/bench.js';
import type { ModelBenchReport } from '../src/bench/model-bench.js';
import { infoCommand } from '../src/cli/info.js';
import { runCommand } from '../src/cli/run.js';
import { captureOutput } from './support/capture.js';
import { MODELS, loadGolden } from './support/golden.js';

const STORIES = join(MODELS, 'stories260K.gguf');

describe('memory flags', () => {
  it('run --memory-budget streams layers, prints the golden text and a memory line', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    // stories260K (F32) at context 64 needs 1.02 MiB at least (two slots of 177 KiB, KV, scratch,
    // resident tensors) and about 1.5 MiB for everything: 1.3 MB streams some layers.
    const r = await captureOutput(() => runCommand(['-m', STORIES, '-p', 'Once upon a time', '-n', '24', '--temp', '0', '--ctx', '64', '--memory-budget', '1.3MB', '-t', '1']));
    expect(r.code).toBe(0);
    expect(g.text.startsWith(r.stdout.trimEnd())).toBe(true);
    expect(r.stdout.length).toBeGreaterThan(40);
    expect(r.stderr).toMatch(/memory: weights [\d.]+ KiB resident, [\d.]+ KiB streamed per pass \([1-5]\/5 layers through 2 slots of [\d.]+ KiB\) \| budget 1\.24 MiB \| embeddings read per token from storage \(128\.00 KiB not resident\)/);
    expect(r.stderr).toMatch(/first token [\d.]+ s after start/);
  });

  it('bad sizes and contradicting cache flags exit 2 with one line naming the flag', async () => {
    const bad = await captureOutput(() => runCommand(['-m', STORIES, '-p', 'x', '--memory-budget', '1XB']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--memory-budget "1XB" is not a size/);
    const both = await captureOutput(() => runCommand(['-m', STORIES, '-p', 'x', '--no-cache', '--cache-dir', '/tmp']));
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--cache-dir and --no-cache contradict each other/);
    const tooSmall = await captureOutput(() => runCommand(['-m', STORIES, '-p', 'x', '--memory-budget', '100KB', '--ctx', '64']));
    expect(tooSmall.code).toBe(1);
    // The parts named must add up to the minimum, and the KV cache is 5 layers x 64 positions x K and
    // V x 32 (n_embd_k_gqa of stories260K) x 4 bytes = 80 KiB.
    const m = /^pocketllm: memory budget 97\.66 KiB is below the ([\d.]+) MiB this model needs at least: 2 layer slots \(2 × ([\d.]+) KiB\) \+ KV cache 80\.00 KiB \(context 64\) \+ scratch ([\d.]+) KiB \+ resident tensors ([\d.]+) KiB \+ runtime ([\d.]+) KiB; raise the budget or lower the context length\n$/.exec(tooSmall.stderr);
    expect(m, tooSmall.stderr).not.toBeNull();
    const [minMiB, slot, scratch, resident, runtime] = m!.slice(1).map(Number) as [number, number, number, number, number];
    expect(Math.abs((2 * slot + 80 + scratch + resident + runtime) / 1024 - minMiB)).toBeLessThanOrEqual(0.005);
  });

  it('bench --memory-budget none,SIZE measures both and reports resident vs streamed bytes', async () => {
    const r = await captureOutput(() => benchCommand(['-m', STORIES, '-p', '8', '-n', '4', '-r', '1', '--memory-budget', 'none,1MB', '--json']));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as ModelBenchReport;
    expect(report.settings.memoryBudgets).toEqual([null, 1_000_000]);
    expect(report.runs.map((x) => x.memoryBudget)).toEqual([null, 1_000_000]);
    const [full, budget] = report.runs.map((x) => x.weightMemory);
    expect(full!.streamedLayers).toBe(0);
    expect(full!.streamedWeightBytes).toBe(0);
    expect(budget!.streamedLayers).toBeGreaterThan(0);
    expect(budget!.streamedWeightBytes).toBeGreaterThan(0);
    // Either way every weight is read each step: resident + streamed is the same.
    expect(budget!.residentWeightBytes + budget!.streamedWeightBytes).toBeGreaterThanOrEqual(full!.residentWeightBytes - 64 * 1024);
    const text = await captureOutput(() => benchCommand(['-m', STORIES, '-p', '0', '-n', '2', '-r', '1', '--memory-budget', 'none,1MB']));
    expect(text.stdout).toMatch(/\| +budget \|/);
    expect(text.stdout).toMatch(/memory: weights .* streamed per pass/);
  });

  it('info says where embedding rows come from', async () => {
    const r = await captureOutput(() => infoCommand([STORIES]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tied embeddings +no \(token_embd stays in the file; each token's row is read when used\)/);
  });
});
