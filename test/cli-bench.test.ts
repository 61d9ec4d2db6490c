// `pocketllm bench` on the real stories260K model with tiny settings: the JSON report has the shape
// the docs promise and positive measurements (no timing thresholds: the machine is shared), the model
// facts match the file's documented hyperparameters, and bad input gives the documented exit codes.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { benchCommand } from '../src/cli/bench.js';
import type { ModelBenchReport } from '../src/bench/model-bench.js';
import { summarize } from '../src/bench/stats.js';

const MODEL = '/work/shared/models/stories260K.gguf';

/** Runs the command and returns its exit code with everything it wrote to stdout and stderr. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await benchCommand(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('pocketllm bench --json on stories260K', () => {
  it('reports pp and tg tests with positive rates, load time and memory', async () => {
    const { code, stdout, stderr } = await run(['-m', MODEL, '-p', '8', '-n', '4', '-r', '1', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as ModelBenchReport;

    // Facts from /work/shared/models/MODELS.md: llama, 5 blocks, embd 64, ffn 172, 8/4 heads of 8,
    // vocab 512, all 48 tensors F32, output.weight stored separately.
    const embd = 64, ffn = 172, kvDim = 4 * 8, vocab = 512, blocks = 5;
    const perBlock = embd * embd * 2 + embd * kvDim * 2 + 3 * embd * ffn + 2 * embd;
    const params = 2 * vocab * embd + blocks * perBlock + embd;
    expect(report.model).toMatchObject({ architecture: 'llama', type: 'F32', vocabSize: vocab, layers: blocks, embeddingLength: embd, parameters: params });
    expect(report.model.sizeBytes).toBe(params * 4);

    expect(report.settings).toMatchObject({ promptLengths: [8], generateTokens: 4, repetitions: 1, threads: [1], kernels: 'auto' });
    expect(report.runs).toHaveLength(1);
    const run0 = report.runs[0]!;
    expect(['scalar', 'simd', 'relaxed']).toContain(run0.kernels);
    expect(run0.threadsRequested).toBe(1);
    expect(run0.loadMs).toBeGreaterThan(0);
    // Every weight is in wasm memory but the token embedding table, whose rows are read per token.
    expect(run0.weightMemory.embeddings).toBe('disk');
    expect(run0.wasm.weights + run0.weightMemory.diskEmbeddingBytes).toBeGreaterThanOrEqual(report.model.sizeBytes);
    expect(run0.wasm.kv).toBeGreaterThan(0);
    expect(run0.wasm.memory).toBeGreaterThanOrEqual(run0.wasm.weights + run0.wasm.kv + run0.wasm.scratch);
    expect(run0.contextLength).toBeGreaterThanOrEqual(8);

    expect(run0.tests.map((t) => t.test)).toEqual(['pp8', 'tg4']);
    for (const t of run0.tests) {
      expect(t.samplesMs).toHaveLength(1);
      expect(t.samplesMs[0]).toBeGreaterThan(0);
      const { median, min, max } = t.tokensPerSecond;
      expect(median).toBeGreaterThan(0);
      expect(min).toBeLessThanOrEqual(median);
      expect(max).toBeGreaterThanOrEqual(median);
      // The rate is the token count over the measured time.
      expect(median).toBeCloseTo((t.tokens * 1000) / t.samplesMs[0]!, 6);
      expect(t.scaling).toBeNull();
    }
    expect(run0.tests[1]!.weightBytesPerSecond).toBeGreaterThan(0);
    expect(run0.tests[0]!.weightBytesPerSecond).toBeNull();

    expect(report.memory.peakRssBytes).toBeGreaterThan(0);
    expect(report.memory.sampledPeakRssBytes).toBeGreaterThan(0);
    expect(report.machine.cpu.length).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
  });

  it('--profile counts one matmul call per weight matrix and forward pass', async () => {
    const { code, stdout } = await run(['-m', MODEL, '-p', '8', '-n', '4', '-r', '1', '--profile', '--json']);
    expect(code).toBe(0);
    const profile = (JSON.parse(stdout) as ModelBenchReport).runs[0]!.profile!;
    // 5 blocks × (q, k, v, output, gate, up, down) + the output projection, all F32 matrices.
    const perPass = 5 * 7 + 1;
    expect(profile.pp!.kernels.find((k) => k.kernel === 'matmulF32')!.calls).toBe(perPass);
    // tg4: the one-token prompt and 4 decode steps.
    expect(profile.tg!.kernels.find((k) => k.kernel === 'matmulF32')!.calls).toBe(5 * perPass);
    for (const p of [profile.pp!, profile.tg!]) {
      expect(p.wallMs).toBeGreaterThan(0);
      for (const k of p.kernels) expect(k.ms).toBeGreaterThanOrEqual(0);
    }
  });

  it('--profile on 1 and 2 threads carries the executor statistics of the 2-thread run only', async () => {
    const { code, stdout } = await run(['-m', MODEL, '-p', '8', '-n', '4', '-r', '1', '-t', '1,2', '--profile', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as ModelBenchReport;
    expect(report.runs.map((r) => r.threadsRequested)).toEqual([1, 2]);
    expect(report.runs[0]!.profile!.threads).toBeUndefined();
    const th = report.runs[1]!.profile!.threads!;
    // Per forward pass: 5 blocks × (q/k/v, output, gate/up, down groups) + the logits matmul, and one
    // attention call per block. pp8 is one pass; tg4 the one-token prompt and 4 decode steps.
    const blocks = 5;
    for (const [p, passes] of [[th.pp!, 1], [th.tg!, 5]] as const) {
      expect(p.threads).toBe(2);
      expect(p.forwardPasses).toBe(passes);
      expect(p.calls.matmul.calls).toBe(passes * (4 * blocks + 1));
      expect(p.calls.matmul.jobs).toBe(passes * (7 * blocks + 1));
      expect(p.calls.attention.calls).toBe(passes * blocks);
      expect(p.calls.norm.calls).toBe(passes * (2 * blocks + 1));
      expect(p.threadBusyMs).toHaveLength(2);
      expect(p.wallMs).toBeGreaterThan(0);
      expect(p.serialMs).toBeGreaterThanOrEqual(0);
      expect(p.waitMs).toBeGreaterThanOrEqual(0);
      expect(p.kinds.map((k) => k.kind)).toEqual(['matmul', 'attention', 'norm', 'swiglu', 'add']);
    }
    expect(report.runs[1]!.tests.every((t) => t.scaling !== null && t.scaling > 0)).toBe(true);
  });

  it('prints where the threads spent their time with --profile on 2 threads', async () => {
    const { code, stdout } = await run(['-m', MODEL, '-p', '8', '-n', '2', '-r', '1', '-t', '2', '--profile']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/thread time, pp8 \(\w+, t=2\), [\d.]+ ms over 1 forward pass:/);
    expect(stdout).toMatch(/thread time, tg2 \(\w+, t=2\), [\d.]+ ms over 3 forward passes:/);
    expect(stdout).toMatch(/waiting at the barrier [\d.]+ ms/);
    expect(stdout).toMatch(/\| call +\| calls \| split \|/);
  });

  it('prints a table with one row per test by default', async () => {
    const { code, stdout } = await run(['-m', MODEL, '-p', '8', '-n', '0', '-r', '1', '--kernels', 'scalar']);
    expect(code).toBe(0);
    const rows = stdout.split('\n').filter((l) => l.startsWith('| '));
    expect(rows[0]).toMatch(/\| model .*\| test .*\| t\/s \(median\)/);
    expect(rows.slice(1).map((r) => r.split('|')[7]!.trim())).toEqual(['pp8']);
    expect(stdout).toContain('| scalar ');
    expect(stdout).toMatch(/peak RSS \d/);
  });
});

describe('pocketllm bench errors', () => {
  it.each([
    [['-m', MODEL, '-p', 'abc']],
    [['-m', MODEL, '-p', '8,,16']],
    [['-m', MODEL, '-t', '0']],
    [['-m', MODEL, '-r', '1.5']],
    [['-m', MODEL, '--kernels', 'fast']],
    [['-m', MODEL, '-p', '0', '-n', '0']],
    [['-m', MODEL, '--no-such-flag']],
    [['-p', '8']],
  ])('exits 2 on bad arguments %j', async (argv) => {
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 1 with one line naming the file when the model is missing', async () => {
    const { code, stderr } = await run(['-m', '/nonexistent/model.gguf', '-p', '8', '-n', '4', '-r', '1']);
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('/nonexistent/model.gguf');
  });
});

describe('summarize', () => {
  it('gives the median of odd and even counts and the range', () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, count: 3 });
    expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, count: 4 });
    expect(() => summarize([])).toThrow(RangeError);
  });
});
