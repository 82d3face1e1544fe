import type { ModelFormat } from "./format.js";

/** The facts every model config blob format states, under one set of names. */
export interface ModelInfo {
  /** Weight file format: `safetensors`, `gguf`, … */
  format?: string;
  /** The model family as the config names it (`llama`, `qwen2`, …). */
  architecture?: string;
  /** Parameter count as written (`360M`, `7B`). */
  parameters?: string;
  /** Quantization or precision (`Q4_K_M`, `bfloat16`). */
  quantization?: string;
  /** The context length in tokens. */
  contextSize?: number;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function pick(source: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const value = source[key];
    if (typeof value === "string" && value !== "") return value;
    if (typeof value === "number") return String(value);
  }
  return undefined;
}

/**
 * Reads the model config blob of any family (Docker model-spec, ModelPack, KitOps) into `ModelInfo`.
 * Fields a format does not state are left out.
 */
export function modelInfo(format: ModelFormat, configBlob: unknown): ModelInfo {
  const root = record(configBlob);
  const config = record(root.config);
  const kit = record(root.model);
  const source = format === "kitops" ? { ...kit, ...record(kit.parameters) } : config;
  const info: ModelInfo = {};
  const set = <K extends keyof ModelInfo>(key: K, value: ModelInfo[K] | undefined) => {
    if (value !== undefined) info[key] = value;
  };
  set("format", pick(source, "format"));
  set("architecture", pick(source, "architecture"));
  set("parameters", pick(source, "parameters", "paramSize", "param_size"));
  set("quantization", pick(source, "quantization", "precision"));
  const context = Number(pick(source, "context_size", "contextSize", "context_length") ?? Number.NaN);
  if (Number.isFinite(context) && context > 0) info.contextSize = context;
  return info;
}
