// The model-loading flags run and chat share (--ctx, --threads, the memory flags, the KV flags): their
// parseArgs entries, their help lines, their checking into loadModel options, and the load itself
// with a progress bar on stderr.
import { loadModel } from '../engine/load.js';
import type { LoadModelOptions } from '../engine/load.js';
import type { Model } from '../engine/model.js';
import { numberOption } from './args.js';
import { KV_HELP, KV_PARSE_OPTIONS, kvOptions } from './kv-options.js';
import { memoryOptions } from './memory-options.js';
import { createProgress } from './progress.js';

export const LOAD_HELP =
  `      --ctx N             context length (default: min(model's, 4096))\n` +
  `  -t, --threads N         threads running the kernels (default: all cores)\n` +
  `      --memory-budget SIZE  wasm memory for weights, KV cache and scratch (e.g. 1GB, 512MiB);\n` +
  `                          layers that do not fit are streamed from the file, read ahead of use\n` +
  `      --cache-dir DIR     where packed weights are cached (default: $POCKETLLM_CACHE_DIR or ~/.cache/pocketllm)\n` +
  `      --no-cache          neither read nor write the packed-weight cache\n` +
  KV_HELP;

/** The parseArgs entries of the loading flags. */
export const LOAD_PARSE_OPTIONS = {
  ctx: { type: 'string' },
  threads: { type: 'string', short: 't' },
  'memory-budget': { type: 'string' },
  'cache-dir': { type: 'string' },
  'no-cache': { type: 'boolean' },
  ...KV_PARSE_OPTIONS,
} as const;

type LoadArgs = { [K in keyof typeof LOAD_PARSE_OPTIONS]?: (typeof LOAD_PARSE_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** Checked loadModel options from the loading flags; a bad value is a usage error naming its flag. */
export function loadOptions(args: LoadArgs): LoadModelOptions {
  return {
    contextLength: numberOption(args.ctx, '--ctx', { integer: true, min: 1 }),
    threads: numberOption(args.threads, '--threads', { integer: true, min: 1 }),
    ...memoryOptions(args['memory-budget'], args['cache-dir'], args['no-cache']),
    ...kvOptions(args['kv-cache'], args['kv-resident']),
  };
}

/** loadModel with a progress bar on stderr (drawn only on a terminal). */
export async function loadModelWithProgress(path: string, options: LoadModelOptions): Promise<Model> {
  const progress = createProgress('loading', 1);
  try {
    return await loadModel(path, { ...options, onProgress: (e) => progress.update(e.loadedBytes / Math.max(1, e.totalBytes)) });
  } finally {
    progress.done();
  }
}
