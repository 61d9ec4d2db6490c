// pocketllm's public API.
export { loadModel } from './engine/load.js';
export { Model, AbortError } from './engine/model.js';
export type { LoadModelOptions, LoadProgressEvent } from './engine/load.js';
export type { GenerateOptions, GeneratedPiece, Completion, GenerationStats, StopReason } from './engine/model.js';
export { readGGUF, readGGUFBytes } from './gguf/reader.js';
export { writeGGUF, fileSink, memorySink, tensorFromStorage } from './gguf/writer.js';
export { GGUFError, GGUFValueType, GGUF_CAPS } from './gguf/types.js';
export type { GGUFFile, GGUFKV, GGUFTensorInfo, GGUFValue, GGUFArray, GGUFCaps, GGUFErrorCode } from './gguf/types.js';
export { GGMLType, TYPE_TRAITS } from './quant/formats.js';
export type { Storage } from './storage/storage.js';
export { openFileStorage } from './storage/node.js';
export { memoryStorage } from './storage/memory.js';
export type { Tokenizer, EncodeOptions } from './tokenizer/tokenizer.js';
export type { HParams } from './model/hparams.js';
export { ChatSession } from './engine/chat.js';
export type { ChatOptions, ChatGenerateOptions } from './engine/chat.js';
export { ChatTemplate, ChatTemplateError } from './tokenizer/chat-template.js';
export type { ChatMessage, ChatTemplateOptions, ChatTemplateRenderOptions } from './tokenizer/chat-template.js';
