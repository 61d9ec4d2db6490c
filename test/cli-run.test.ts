// `pocketllm run`: the README's main command prints llama.cpp's golden text; bad input gives one line
// and a non-zero status.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildGGUFHeader } from '../src/gguf/writer.js';
import { GGUFValueType } from '../src/gguf/types.js';
import { runCommand } from '../src/cli/run.js';
import { captureOutput } from './support/capture.js';
import { MODELS, loadGolden } from './support/golden.js';

const dir = mkdtempSync(join(tmpdir(), 'pocketllm-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pocketllm run', () => {
  it('greedy run of stories260K prints the golden text', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const r = await captureOutput(() => runCommand(['-m', join(MODELS, 'stories260K.gguf'), '-p', 'Once upon a time', '-n', '64', '--temp', '0']));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(g.text + '\n');
    expect(r.stderr).toMatch(/generated: 64 tokens/);
  });

  it('reads the prompt from a file with -f', async () => {
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const prompt = join(dir, 'prompt.txt');
    writeFileSync(prompt, 'Once upon a time');
    const r = await captureOutput(() => runCommand(['-m', join(MODELS, 'stories260K.gguf'), '-f', prompt, '-n', '10', '--temp', '0']));
    expect(r.code).toBe(0);
    expect(g.text.startsWith(r.stdout.trimEnd())).toBe(true);
    expect(r.stdout.length).toBeGreaterThan(20);
  });

  it('a missing file, a corrupt file and an unsupported architecture each give one line and status 1', async () => {
    const missing = await captureOutput(() => runCommand(['-m', join(dir, 'nope.gguf'), '-p', 'x']));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/no such file: .*nope\.gguf/)]);

    const truncated = join(dir, 'cut.gguf');
    writeFileSync(truncated, readFileSync(join(MODELS, 'stories260K.gguf')).subarray(0, 5000));
    const corrupt = await captureOutput(() => runCommand(['-m', truncated, '-p', 'x']));
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr.trim().split('\n')).toEqual([expect.stringMatching(/file ends inside .* \(at byte \d+\)/)]);

    const gpt = join(dir, 'arch.gguf');
    writeFileSync(gpt, buildGGUFHeader([{ key: 'general.architecture', type: GGUFValueType.STRING, value: 'mamba' }], []));
    const arch = await captureOutput(() => runCommand(['-m', gpt, '-p', 'x']));
    expect(arch.code).toBe(1);
    expect(arch.stderr.trim().split('\n')).toEqual([expect.stringMatching(/unsupported architecture "mamba"/)]);
  });

  it('bad arguments give status 2', async () => {
    expect((await captureOutput(() => runCommand(['-p', 'x']))).code).toBe(2);
    expect((await captureOutput(() => runCommand(['-m', 'x.gguf', '-p', 'x', '-n', 'many']))).code).toBe(2);
    expect((await captureOutput(() => runCommand(['--bogus']))).code).toBe(2);
  });
});
