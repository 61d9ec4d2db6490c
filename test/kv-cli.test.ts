// The KV flags of the CLI: `run --kv-cache f16 --kv-resident 16` prints llama.cpp's text for an f16 KV
// cache (golden), `bench` reports the kv memory of each precision, and a bad value is a usage error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelBenchReport } from '../src/bench/model-bench.js';
import { benchCommand } from '../src/cli/bench.js';
import { runCommand } from '../src/cli/run.js';
import { captureOutput } from './support/capture.js';
import { GOLDEN, MODELS } from './support/golden.js';

const STORIES = join(MODELS, 'stories260K.gguf');

describe('KV flags', () => {
  it('run --kv-cache f16 --kv-resident 16 prints the golden text of llama.cpp with an f16 KV cache', async () => {
    const g = JSON.parse(readFileSync(join(GOLDEN, 'stories260K', 'once_upon_a_time.greedy64.kvf16.json'), 'utf8'));
    const r = await captureOutput(() => runCommand(['-m', STORIES, '-p', g.prompt, '-n', '64', '--temp', '0', '-t', '1', '--kv-cache', 'f16', '--kv-resident', '16']));
    expect(r.stderr).toMatch(/generated: 64 tokens/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(g.generated_text + '\n');
  });

  it('bench reports the kv region at each precision', async () => {
    const kv: Record<string, number> = {};
    for (const p of ['f32', 'f16', 'int8']) {
      const r = await captureOutput(() => benchCommand(['-m', STORIES, '-p', '8', '-n', '2', '-r', '1', '--json', '--kv-cache', p]));
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as ModelBenchReport;
      expect(report.settings.kvCache).toBe(p);
      kv[p] = report.runs[0]!.wasm.kv;
    }
    // stories260K: heads of 8 values, so an int8 row is (8 + 4) / 16 of an f16 one (4 bytes per head);
    // int8 also holds per layer an f16 key tail of 2 headDim rows: 5 layers x 16 rows x 32 values x 2 bytes.
    expect(kv.f16! / kv.f32!).toBeCloseTo(0.5, 2);
    expect((kv.int8! - 5 * 16 * 32 * 2) / kv.f16!).toBeCloseTo(12 / 16, 2);
  });

  it('a bad --kv-cache or --kv-resident is a usage error naming the flag', async () => {
    const bad = await captureOutput(() => runCommand(['-m', STORIES, '-p', 'x', '--kv-cache', 'q4']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--kv-cache takes f32, f16, int8; got "q4"/);
    const zero = await captureOutput(() => runCommand(['-m', STORIES, '-p', 'x', '--kv-resident', '0']));
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--kv-resident must be at least 1/);
  });
});
