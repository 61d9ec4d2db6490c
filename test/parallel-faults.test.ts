// Worker failures never hang the engine: a worker that throws, calls process.exit, stops answering,
// or is killed between calls fails the call with the cause (or not at all when it died idle), the pool
// is rebuilt, and the model goes on giving the same logits; close() ends every worker so the process
// can exit. Faults come from the executor's test hooks.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import type { LoadModelOptions } from '../src/engine/load.js';
import type { ParallelExecutor } from '../src/parallel/parallel-executor.js';
import { WorkerFaultError } from '../src/parallel/parallel-executor.js';
import { WorkerPool } from '../src/parallel/pool.js';
import { compileKernelVariant } from '../src/runtime/kernels.js';
import { createSharedMemory } from '../src/runtime/memory.js';
import { loadGolden } from './support/golden.js';

const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
const TOKENS = [...g.promptTokens, ...g.generatedTokens.slice(0, 20)];

const opened: Model[] = [];
afterAll(async () => {
  for (const m of opened) await m.close();
});

async function open(threads: number, parallel: LoadModelOptions['parallel'] = {}): Promise<Model> {
  const m = await loadModel(g.model, { threads, parallel: { minParallelMs: 0, ...parallel } });
  opened.push(m);
  return m;
}

function executorOf(m: Model): ParallelExecutor {
  return m.executor as ParallelExecutor;
}

/** The worker threads of the model's current pool (reaching into the pool, for the tests only). */
function workersOf(m: Model): Worker[] {
  const pool = (executorOf(m) as unknown as { pool?: { piscina: { threads: Worker[] } } }).pool;
  return pool ? [...pool.piscina.threads] : [];
}

let reference: Float32Array | undefined;
async function referenceLogits(): Promise<Float32Array> {
  if (!reference) {
    const m = await open(1);
    reference = m.evaluate(TOKENS, { all: true });
  }
  return reference;
}

/** The model is back to full strength and gives the reference logits. */
async function expectRecovered(m: Model, threads: number): Promise<void> {
  await m.executor.ready();
  const s = m.executor.stats();
  expect(s.activeThreads).toBe(threads);
  const before = s.parallelCalls;
  expect(m.evaluate(TOKENS, { all: true })).toEqual(await referenceLogits());
  expect(m.executor.stats().parallelCalls).toBeGreaterThan(before);
}

describe('worker faults', () => {
  it('a worker that throws fails the call with its error as the cause; the pool is rebuilt', async () => {
    const expected = await referenceLogits();
    const m = await open(3);
    expect(m.evaluate(TOKENS, { all: true })).toEqual(expected);
    executorOf(m).injectFault(2, 'throw');
    let caught: unknown;
    try {
      m.evaluate(TOKENS, { all: true });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(WorkerFaultError);
    const fault = caught as WorkerFaultError;
    expect(fault.participant).toBe(2);
    expect(fault.kind).toBe('threw');
    expect(fault.message).toMatch(/worker thread 2 threw.*told to throw/);
    expect((fault.cause as Error).message).toMatch(/test hook: this worker was told to throw/);
    expect(m.executor.stats().faults).toBe(1);
    // While the pool is rebuilt the calls run on this thread alone, with the same results.
    expect(m.evaluate(TOKENS, { all: true })).toEqual(expected);
    await expectRecovered(m, 3);
  });

  it('a worker that calls process.exit rejects generate() with the cause', async () => {
    const m = await open(2);
    executorOf(m).injectFault(1, 'exit');
    await expect(m.complete(g.promptTokens, { temperature: 0, maxTokens: 8 })).rejects.toThrow(/worker thread 1 exited.*code 3/);
    await m.executor.ready();
    const out = await m.complete(g.promptTokens, { temperature: 0, maxTokens: g.generatedTokens.length });
    expect(out.tokens).toEqual(g.generatedTokens);
    await expectRecovered(m, 2);
  });

  it('a worker that stops answering fails the call after the stall timeout, then is replaced', async () => {
    const m = await open(2, { stallTimeoutMs: 1500 });
    executorOf(m).injectFault(1, 'hang');
    const t0 = performance.now();
    expect(() => m.evaluate(TOKENS, { all: true })).toThrow(/did not finish a kernel call within 1500 ms/);
    expect(performance.now() - t0).toBeLessThan(30_000);
    await expectRecovered(m, 2);
  });

  it('a worker killed between calls is replaced without failing a call', async () => {
    const m = await open(3);
    const [victim] = workersOf(m);
    await victim!.terminate();
    // The pool learns of the death through its task's rejection, on the event loop.
    const ex = executorOf(m) as unknown as { pool?: { block: { fault(): unknown } } };
    for (let i = 0; i < 500 && !ex.pool?.block.fault(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(m.evaluate(TOKENS, { all: true })).toEqual(await referenceLogits());
    expect(m.executor.stats().faults).toBe(1);
    expect(m.executor.stats().lastFault?.message).toMatch(/failed between calls/);
    await expectRecovered(m, 3);
  });

  it('a pool whose workers cannot start rejects with the reason', async () => {
    const module = (await compileKernelVariant('scalar'))!;
    await expect(
      WorkerPool.start({ workers: 2, module, memory: createSharedMemory(), kernelNames: ['matmulF32', 'noSuchKernel'], spinMicros: 0 }),
    ).rejects.toThrow(/no export "noSuchKernel"/);
  });
});

describe('closing', () => {
  it('close() ends every worker thread, also right after a fault while the pool is rebuilt', async () => {
    const m = await open(3);
    const workers = workersOf(m);
    expect(workers.length).toBe(2);
    const exits = workers.map((w) => new Promise((r) => w.once('exit', r)));
    executorOf(m).injectFault(1, 'throw');
    expect(() => m.evaluate(TOKENS)).toThrow(WorkerFaultError);
    await m.close();
    await Promise.all(exits);
    expect(workers.every((w) => w.threadId === -1)).toBe(true);
    expect(m.executor.stats().activeThreads).toBe(1);
    expect(() => m.evaluate(TOKENS)).toThrow(/closed/);
  });

  it('a process that loads a 3-thread model, fails a worker and closes the model exits by itself', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocketllm-parallel-'));
    const script = join(dir, 'exit.ts');
    const src = resolve(__dirname, '..', 'src');
    writeFileSync(
      script,
      `import { loadModel } from ${JSON.stringify(join(src, 'engine', 'load.js'))};
const m = await loadModel(${JSON.stringify(g.model)}, { threads: 3, parallel: { minParallelMs: 0 } });
m.evaluate([1, 403, 407]);
(m.executor as any).injectFault(2, 'exit');
try { m.evaluate([1, 403, 407]); } catch (e) { console.log('failed as asked:', (e as Error).message.split('\\n')[0]); }
await m.executor.ready();
m.evaluate([1, 403, 407]);
await m.close();
console.log('closed');
`,
    );
    const viteNode = resolve(__dirname, '..', 'node_modules', '.bin', 'vite-node');
    const r = spawnSync(viteNode, [script], { cwd: resolve(__dirname, '..'), encoding: 'utf8', timeout: 60_000 });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toMatch(/failed as asked: worker thread 2 exited/);
    expect(r.stdout).toMatch(/closed/);
    expect(r.status).toBe(0);
  });
});
