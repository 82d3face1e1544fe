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
  /** ModelPack's `precision` (`bfloat16`), which `quantization` falls back to when it states none. */
  precision?: string;
  /** The context length in tokens. */
  contextSize?: number;
  /** Docker's `size`: the model's size in bytes as the config writes it (a string). */
  size?: string;
  /**
   * Docker's `gguf` map: the GGUF file's metadata as Model Runner copies it, key → value as text
   * (`general.architecture`, `llama.context_length`, `tokenizer.chat_template`, …).
   */
  gguf?: Record<string, string>;
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
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
  }
  return undefined;
}

/** A map of text values (Docker's `gguf`), numbers and booleans written as text; others dropped. */
function textMap(value: unknown): Record<string, string> | undefined {
  const entries = Object.entries(record(value)).flatMap(([key, v]) =>
    typeof v === "string" || typeof v === "number" || typeof v === "boolean"
      ? [[key, String(v)] as const]
      : [],
  );
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/**
 * Reads the model config blob of any family into `ModelInfo`; fields a config does not state are
 * left out.
 *
 * - Docker model-spec (v0.1, v0.2 and the 2025 prototype) — `config.format`, `quantization`,
 *   `parameters`, `architecture`, `size`, `context_size` and the `gguf` map, as Model Runner writes
 *   them (docker/model-runner pkg/distribution/types/config.go); where `architecture`,
 *   `parameters`, `quantization` or `context_size` are missing, the `gguf` (or `safetensors`) map's
 *   own keys stand in: the spec's `architecture`/`parameter_count`/`quantization`
 *   (docker/model-spec config.md), or GGUF's `general.architecture`, `general.size_label` and
 *   `<architecture>.context_length`.
 * - ModelPack — `config.architecture`, `format`, `paramSize`, `quantization`, `precision`
 *   (modelpack/model-spec specs-go/v1/config.go).
 * - KitOps — the Kitfile's `model` section and its `parameters`.
 * - Ollama — the container config's `model_format` (format), `model_family` (architecture, else the
 *   first of `model_families`), `model_type` (parameters, `3.2B`), `file_type` (quantization,
 *   `Q4_K_M`) and `context_length` (ollama/ollama types/model/config.go, `ConfigV2`).
 */
export function modelInfo(format: ModelFormat, configBlob: unknown): ModelInfo {
  const root = record(configBlob);
  if (format === "ollama") return ollamaInfo(root);
  const config = record(root.config);
  const kit = record(root.model);
  const source = format === "kitops" ? { ...kit, ...record(kit.parameters) } : config;
  const gguf = format === "kitops" ? undefined : textMap(config.gguf);
  const fallback: Record<string, unknown> = { ...record(config.safetensors), ...gguf };
  const info: ModelInfo = {};
  const set = <K extends keyof ModelInfo>(key: K, value: ModelInfo[K] | undefined) => {
    if (value !== undefined) info[key] = value;
  };
  set("format", pick(source, "format"));
  const architecture = pick(source, "architecture") ?? pick(fallback, "architecture", "general.architecture");
  set("architecture", architecture);
  set(
    "parameters",
    pick(source, "parameters", "paramSize", "param_size") ??
      pick(fallback, "parameter_count", "general.size_label", "general.parameter_count"),
  );
  const precision = format === "modelpack" ? pick(source, "precision") : undefined;
  set("quantization", pick(source, "quantization", "precision") ?? pick(fallback, "quantization"));
  set("precision", precision);
  const ggufArchitecture = pick(fallback, "general.architecture");
  const context = Number(
    pick(source, "context_size", "contextSize", "context_length") ??
      (ggufArchitecture ? pick(fallback, `${ggufArchitecture}.context_length`) : undefined) ??
      Number.NaN,
  );
  if (Number.isSafeInteger(context) && context > 0) info.contextSize = context;
  if (format !== "kitops") set("size", pick(source, "size"));
  set("gguf", gguf);
  return info;
}

/** Ollama's config blob (`ConfigV2`, ollama/ollama types/model/config.go) as `ModelInfo`. */
function ollamaInfo(root: Record<string, unknown>): ModelInfo {
  const info: ModelInfo = {};
  const families = Array.isArray(root.model_families) ? root.model_families : [];
  const firstFamily = families.find((f): f is string => typeof f === "string" && f !== "");
  const set = <K extends keyof ModelInfo>(key: K, value: ModelInfo[K] | undefined) => {
    if (value !== undefined) info[key] = value;
  };
  set("format", pick(root, "model_format"));
  set("architecture", pick(root, "model_family") ?? firstFamily);
  set("parameters", pick(root, "model_type"));
  set("quantization", pick(root, "file_type"));
  const context = Number(pick(root, "context_length") ?? Number.NaN);
  if (Number.isSafeInteger(context) && context > 0) info.contextSize = context;
  return info;
}
