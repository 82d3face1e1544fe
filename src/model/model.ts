import { OciError } from "../errors.js";
import { ModelMediaType } from "../oci/media-types.js";
import { readJson } from "../store/bytes.js";
import type { Store } from "../store/types.js";
import { isWeightFile } from "../tensors/files.js";
import { iterateTensors, readTensor, type Tensor, tensorIndex } from "../tensors/reader.js";
import type { TensorEntry } from "../tensors/types.js";
import type { ModelFormat } from "./format.js";
import { type ModelInfo, modelInfo } from "./info.js";
import { fileBlob, type ModelFileInfo, type ModelRecord, readFile, readFileBlob } from "./record.js";

/** One file of a model, read from the store. */
export interface ModelFile extends ModelFileInfo {
  /** The bytes, whole or a range of them. */
  stream(options?: {
    offset?: number;
    length?: number;
    signal?: AbortSignal;
  }): Promise<ReadableStream<Uint8Array>>;
  /** The whole file, decoded as UTF-8. */
  text(): Promise<string>;
  /** The whole file, parsed as JSON; `T` is what the caller expects, not checked. */
  json<T = unknown>(): Promise<T>;
  /** The whole file, in memory. */
  arrayBuffer(): Promise<ArrayBuffer>;
  /**
   * The whole file as a `Blob` over what the store holds (`Store.blob`): no copy through the JS heap
   * in OPFS or the fs store, for runtimes that take a `Blob` or an object URL.
   */
  blob(): Promise<Blob>;
}

/**
 * A pulled model: a view over its record in a store. Files are read from the store; nothing here
 * touches the network.
 */
export class Model {
  /** The reference it was pulled under, normalised (`docker.io/ai/smollm2:360M`). */
  readonly reference: string;
  /** The digest of its manifest: pin to it with `name@digest`. */
  readonly digest: string;
  /** Its manifest's media type. */
  readonly mediaType: string;
  /** The artifact format: Docker model-spec v0.1 or v0.2, ModelPack, KitOps, Ollama, or `unknown`. */
  readonly format: ModelFormat;
  /** The model's OCI config blob, parsed, as the format wrote it. */
  readonly modelConfig: Record<string, unknown>;
  /** What the config blob states, under one set of names whatever the format. */
  readonly info: ModelInfo;
  /** `config.json` (at the root, else the shallowest one), parsed, when the model has one. */
  readonly config: Record<string, unknown> | undefined;
  /** Every file, by path. */
  readonly files: ReadonlyMap<string, ModelFileInfo>;
  /** Paths of the weight files, in load order (manifest order, then archive order). */
  readonly weights: readonly string[];
  /** False after a config-only pull: some weights are not in the store yet. */
  readonly complete: boolean;
  /** The store its files are read from. */
  readonly store: Store;

  /**
   * A view over a model record; `pullModel` and `openModel` make one.
   *
   * @param store The store holding the record and the files.
   * @param record What the pull recorded: reference, manifest digest, files.
   * @param modelConfig The OCI config blob, parsed.
   * @param config The model's `config.json`, parsed, when it has one.
   */
  constructor(
    store: Store,
    record: ModelRecord,
    modelConfig: Record<string, unknown>,
    config: Record<string, unknown> | undefined,
  ) {
    this.store = store;
    this.reference = record.reference;
    this.digest = record.digest;
    this.mediaType = record.mediaType;
    this.format = record.format;
    this.modelConfig = modelConfig;
    this.info = modelInfo(record.format, modelConfig);
    this.config = config;
    // Which files are weights follows each file's layer media type where a model format defines it
    // (a projector or a license never is, whatever the pull that wrote the record marked).
    const files = record.files.map((f) => ({ ...f, weight: isWeightFile(f.path, f.mediaType) }));
    this.files = new Map(files.map((f) => [f.path, f]));
    this.weights = files.filter((f) => f.weight).map((f) => f.path);
    this.complete = record.pending.length === 0;
  }

  /**
   * Tensor name → file, dtype, shape, byte offset and length, from the tensor files' headers
   * (safetensors, GGUF, checkpoints) and Ollama tensor layers' media types (one tensor per file).
   */
  tensorIndex(): Promise<Map<string, TensorEntry>> {
    return tensorIndex(this);
  }

  /** Every tensor, in file and offset order, each file read once (call `data()` before moving on). */
  tensors(): AsyncGenerator<Tensor> {
    return iterateTensors(this);
  }

  /** One tensor's bytes, by a ranged read of its file. */
  readTensor(name: string): Promise<Uint8Array> {
    return readTensor(this, name);
  }

  /**
   * The path of the model's chat template: the file of its chat template layer
   * (`application/vnd.docker.ai.chat.template.jinja`, `template.jinja` when unannotated), else a
   * `chat_template.jinja` (Hugging Face's own file) at the root; undefined when it has neither (a
   * template inside `tokenizer_config.json` or GGUF metadata is not looked for here).
   */
  get chatTemplatePath(): string | undefined {
    for (const [path, f] of this.files) if (f.mediaType === ModelMediaType.DockerChatTemplate) return path;
    return this.files.has("chat_template.jinja") ? "chat_template.jinja" : undefined;
  }

  /**
   * The model's chat template (Jinja) as text, read from the store: the file `chatTemplatePath`
   * names; undefined when the model has none.
   *
   * @throws {OciError} `NOT_FOUND` when the template's blob is not in the store.
   */
  async chatTemplate(): Promise<string | undefined> {
    const path = this.chatTemplatePath;
    return path === undefined ? undefined : this.file(path).text();
  }

  /**
   * A file by path, read from the store when asked (nothing is read here).
   *
   * @param path Its path in the model folder, as in `files` (`config.json`).
   * @returns The file: its digest and size, and readers of its bytes.
   * @throws {OciError} `NOT_FOUND` when the model has no such file.
   */
  file(path: string): ModelFile {
    const info = this.files.get(path);
    if (!info) {
      const hint = this.complete ? "" : " (this was a config-only pull: pull again with weights)";
      throw new OciError(
        "NOT_FOUND",
        `Cannot open ${path} of ${this.reference}: the model has no such file${hint}`,
      );
    }
    const store = this.store;
    const stream: ModelFile["stream"] = async (options = {}) => readFile(store, info, options);
    return {
      ...info,
      stream,
      text: async () => new Response(await stream()).text(),
      json: async <T>() => JSON.parse(await new Response(await stream()).text()) as T,
      arrayBuffer: async () => new Response(await stream()).arrayBuffer(),
      blob: () => readFileBlob(store, info),
    };
  }
}

/**
 * The largest OCI config blob read whole: it describes a manifest's layers, so the manifest's own
 * 4 MiB limit is ample.
 */
export const CONFIG_BLOB_LIMIT = 4 * 1024 * 1024;
/** The largest `config.json` read whole: a model's is a few KiB, one with a big label map 1 MiB. */
export const CONFIG_JSON_LIMIT = 16 * 1024 * 1024;

/** The `config.json` a model is read with: the one at the root, else the shallowest (KitOps keeps it beside the weights). */
export function configJsonFile<T extends { path: string }>(files: readonly T[]): T | undefined {
  return files
    .filter((f) => f.path === "config.json" || f.path.endsWith("/config.json"))
    .sort((a, b) => a.path.split("/").length - b.path.split("/").length)[0];
}

/**
 * Refuses a config blob or `config.json` too large to read whole: `action` is "pull …" so that such
 * a model is never stored, "open …" for one stored before this check (or by another tool).
 */
export function checkConfigSizes(
  config: { size: number },
  configFile: { path: string; size: number } | undefined,
  action: string,
): void {
  if (config.size > CONFIG_BLOB_LIMIT) {
    throw new OciError(
      "MANIFEST_INVALID",
      `Cannot ${action}: its config blob is ${config.size} bytes, over the ${CONFIG_BLOB_LIMIT}-byte limit for a model config; it is not a model this library reads`,
    );
  }
  if (configFile && configFile.size > CONFIG_JSON_LIMIT) {
    throw new OciError(
      "UNSUPPORTED_ARTIFACT",
      `Cannot ${action}: its ${configFile.path} is ${configFile.size} bytes, over the ${CONFIG_JSON_LIMIT}-byte limit for a model's config.json`,
    );
  }
}

/** Builds the `Model` for a record held in `store`. */
export async function modelFromRecord(store: Store, record: ModelRecord): Promise<Model> {
  const configFile = configJsonFile(record.files);
  checkConfigSizes(record.config, configFile, `open ${record.reference}`);
  const modelConfig = await readJson<Record<string, unknown>>(store, record.config).catch(() => ({}));
  const config =
    configFile && (await store.exists(fileBlob(configFile)))
      ? await readFile(store, configFile)
          .then((body) => new Response(body).json() as Promise<Record<string, unknown>>)
          .catch(() => undefined)
      : undefined;
  return new Model(store, record, modelConfig, config);
}
