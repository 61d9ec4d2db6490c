// `pocketllm run`: load a model, generate from a prompt, stream the text to stdout and the timing
// statistics to stderr.
import { readFile } from 'node:fs/promises';
import { loadModel } from '../engine/load.js';
import { createProgress } from './progress.js';
import { CliUsageError, SAMPLING_PARSE_OPTIONS, numberOption, runCliCommand, samplingOptions } from './args.js';
import { memoryOptions } from './memory-options.js';
import { KV_HELP, KV_PARSE_OPTIONS, kvOptions } from './kv-options.js';
import { formatByteSize } from '../memory/byte-size.js';
import { formatWeightMemory } from '../memory/report.js';

const HELP = `usage: pocketllm run -m model.gguf (-p "prompt" | -f prompt.txt) [options]

  -m, --model FILE        GGUF model to run
  -p, --prompt TEXT       prompt text
  -f, --file FILE         read the prompt from a file
  -n, --n-predict N       tokens to generate (default 128)
      --temp T            temperature; 0 = greedy (default 0.8)
      --top-k K           keep the K most likely tokens (default 40; 0 = off)
      --top-p P           nucleus sampling threshold (default 0.95; 1 = off)
      --min-p P           drop tokens below P x the top probability (default 0.05; 0 = off)
      --repeat-penalty R  penalty for repeating recent tokens (default 1.0 = off)
      --repeat-last-n N   how many recent tokens the penalty looks at (default 64)
      --seed S            random seed (default: random)
      --ctx N             context length (default: min(model's, 4096))
      --stop TEXT         stop when TEXT appears (repeatable)
  -t, --threads N         threads running the kernels (default: all cores)
      --memory-budget SIZE  wasm memory for weights, KV cache and scratch (e.g. 1GB, 512MiB);
                          layers that do not fit are streamed from the file, read ahead of use
      --cache-dir DIR     where packed weights are cached (default: $POCKETLLM_CACHE_DIR or ~/.cache/pocketllm)
      --no-cache          neither read nor write the packed-weight cache
${KV_HELP}      --special           parse control tokens written in the prompt
`;

export async function runCommand(argv: string[]): Promise<number> {
  const config = {
    options: {
      model: { type: 'string', short: 'm' },
      prompt: { type: 'string', short: 'p' },
      file: { type: 'string', short: 'f' },
      'n-predict': { type: 'string', short: 'n' },
      ...SAMPLING_PARSE_OPTIONS,
      ctx: { type: 'string' },
      stop: { type: 'string', multiple: true },
      threads: { type: 'string', short: 't' },
      'memory-budget': { type: 'string' },
      ...KV_PARSE_OPTIONS,
      'cache-dir': { type: 'string' },
      'no-cache': { type: 'boolean' },
      special: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  } as const;
  return runCliCommand({ name: 'run', help: HELP, config }, argv, async ({ values: args }) => {
    if (!args.model) throw new CliUsageError('missing -m model.gguf');
    if (args.prompt === undefined && args.file === undefined) throw new CliUsageError('missing -p "prompt" or -f prompt.txt');
    // Every option is checked before the model is loaded, so a typo fails at once.
    const contextLength = numberOption(args.ctx, '--ctx', { integer: true, min: 1 });
    const threads = numberOption(args.threads, '--threads', { integer: true, min: 1 });
    const memory = memoryOptions(args['memory-budget'], args['cache-dir'], args['no-cache']);
    const kv = kvOptions(args['kv-cache'], args['kv-resident']);
    const options = {
      maxTokens: numberOption(args['n-predict'], '-n', { integer: true, min: 0 }) ?? 128,
      ...samplingOptions(args),
      stop: args.stop,
      parseSpecial: args.special ?? false,
    };
    const prompt = args.file !== undefined ? await readFile(args.file, 'utf8') : args.prompt!;
    const progress = createProgress('loading', 1);
    const startMs = performance.now();
    const model = await loadModel(args.model, {
      contextLength,
      threads,
      ...memory,
      ...kv,
      onProgress: (e) => progress.update(e.loadedBytes / Math.max(1, e.totalBytes)),
    });
    progress.done();
    const loadMs = performance.now() - startMs;
    let firstTokenMs: number | undefined;
    try {
      const it = model.generate(prompt, options);
      for (;;) {
        const r = await it.next();
        firstTokenMs ??= performance.now() - startMs;
        if (r.done) {
          const s = r.value.stats;
          process.stdout.write('\n');
          process.stderr.write(
            `\nprompt: ${s.promptTokens} tokens, ${s.prefillTokensPerSecond.toFixed(1)} tokens/s | ` +
              `generated: ${s.generatedTokens} tokens, ${s.decodeTokensPerSecond.toFixed(1)} tokens/s | ` +
              `stop: ${s.stopReason} | kernels: ${model.kernelVariant} | ` +
              `load ${(loadMs / 1000).toFixed(2)} s, first token ${((firstTokenMs ?? 0) / 1000).toFixed(2)} s after start\n` +
              `memory: ${formatWeightMemory(model.weightMemory())} | peak RSS ${formatByteSize(process.resourceUsage().maxRSS * 1024)}\n`,
          );
          break;
        }
        if (r.value.text) process.stdout.write(r.value.text);
      }
    } finally {
      await model.close();
    }
    return 0;
  });
}
