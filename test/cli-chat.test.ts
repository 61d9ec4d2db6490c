// `pocketllm chat` as a user runs it: the built CLI (bin/pocketllm.js → dist/, which the package's
// prepare step builds) spawned with piped standard input, one message per line, on a synthetic model
// with the real Llama 3 vocabulary and chat template. Its replies must be those of a chat session run
// in-process with the same options, one per line, and it must exit 0 at the end of input.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import { writeLlama3ChatModel } from './support/synth-model.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'pocketllm.js');
const STORIES = join(ROOT, '..', 'shared', 'models', 'stories260K.gguf');

/** src/ files whose compiled dist/ file is missing or older: the CLI under test would not be this code. */
function staleBuild(): string[] {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = join(ROOT, 'dist', relative(join(ROOT, 'src'), path)).replace(/\.ts$/, '.js');
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(path).mtimeMs) stale.push(relative(ROOT, path));
      }
    }
  };
  walk(join(ROOT, 'src'));
  return stale;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], stdin: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

describe('pocketllm chat with piped input', () => {
  let dir: string;
  let modelPath: string;

  beforeAll(async () => {
    const stale = staleBuild();
    if (stale.length > 0) throw new Error(`dist/ is out of date for ${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', ...' : ''}: run \`npm run build:ts\` first`);
    dir = await mkdtemp(join(tmpdir(), 'pocketllm-cli-chat-'));
    modelPath = await writeLlama3ChatModel(dir, 11);
  }, 60_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints one reply per message line, the same as a chat session, and exits 0 at end of input', async () => {
    const system = 'You are terse.';
    const messages = ['Hello there!', 'What is 2+2?'];
    const model = await loadModel(modelPath);
    const expected: string[] = [];
    try {
      const chat = model.chat({ system, temperature: 0, maxTokens: 8 });
      for (const m of messages) expected.push((await chat.reply(m)).text);
    } finally {
      await model.close();
    }
    const r = await runCli(['chat', '-m', modelPath, '--system', system, '-n', '8', '--temp', '0'], messages.join('\n') + '\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(expected.map((t) => t + '\n').join(''));
  });

  it('/reset starts the conversation over; blank lines are skipped; /exit stops reading', async () => {
    const once = await runCli(['chat', '-m', modelPath, '-n', '6', '--temp', '0'], 'Hi\n');
    expect(once.code).toBe(0);
    const r = await runCli(['chat', '-m', modelPath, '-n', '6', '--temp', '0'], 'Hi\n\n/reset\nHi\n/exit\nnot read\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(once.stdout + once.stdout);
  });

  it('reports errors in one line with exit code 1', async () => {
    const missing = await runCli(['chat', '-m', join(dir, 'missing.gguf')], 'Hi\n');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^pocketllm: .*missing\.gguf/);

    const noTemplate = await runCli(['chat', '-m', STORIES], 'Hi\n');
    expect(noTemplate.code).toBe(1);
    expect(noTemplate.stderr.trim().split('\n')).toHaveLength(1);
    expect(noTemplate.stderr).toMatch(/has no chat template.*--template FILE/);
  });

  it('takes a template from --template for a model without one', async () => {
    const templatePath = join(dir, 'plain.jinja');
    await writeFile(templatePath, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");
    const r = await runCli(['chat', '-m', STORIES, '--template', templatePath, '-n', '5', '--temp', '0'], 'Once upon a time\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
  });

  it('rejects a bad option value as a usage error', async () => {
    const r = await runCli(['chat', '-m', modelPath, '-n', 'lots'], '');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-n needs a number/);
  });
});
