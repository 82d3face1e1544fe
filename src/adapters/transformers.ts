/**
 * transformers.js (`@huggingface/transformers`) over OCI registries: a custom cache for
 * `env.customCache` that answers the model files transformers.js asks for from a model pulled by
 * this library (verified, resumable, kept in the default store or the one given), streamed from the
 * store. `@huggingface/transformers` is an optional peer dependency: nothing here imports it; the
 * types below are the parts of its interfaces this module uses.
 *
 * @module
 */
import { OciError } from "../errors.js";
import type { Model } from "../model/model.js";
import { type PullModelOptions, pullModel } from "../model/pull.js";
import { parseReference } from "../reference.js";

/**
 * transformers.js's `CacheInterface` (`env.customCache`), structurally. Keys arrive as strings: the
 * local path (`env.localModelPath` + model id + `/` + file) and then the remote URL
 * (`env.remoteHost` + `env.remotePathTemplate` filled in + file).
 *
 * @example
 * ```ts
 * import { createTransformersCache, type TransformersCacheLike } from "oci-model-loader/transformers";
 *
 * // Models transformers.js downloads itself go to the browser's Cache API; OCI models to the store.
 * const fallback: TransformersCacheLike = await caches.open("transformers-cache");
 * const cache = createTransformersCache({ fallback });
 * ```
 */
export interface TransformersCacheLike {
  /** The cached response for `request`, or undefined for a miss. */
  match(request: string): Promise<Response | undefined>;
  /** Stores a response transformers.js downloaded itself (after a miss). */
  put(
    request: string,
    response: Response,
    progress?: (data: { progress: number; loaded: number; total: number }) => void,
  ): Promise<void>;
  /** Forgets `request`; true when something was removed. */
  delete?(request: string): Promise<boolean>;
}

/**
 * Options of `createTransformersCache`: which model ids are OCI models, and how to pull them.
 *
 * @example
 * ```ts
 * import { createIdbStore } from "oci-model-loader";
 * import { createTransformersCache, type TransformersCacheOptions } from "oci-model-loader/transformers";
 *
 * const options: TransformersCacheOptions = {
 *   models: { "acme/tiny-bert": "ghcr.io/acme/tiny-bert:v1" },
 *   store: createIdbStore("models"),
 *   proxy: "https://oci-model-proxy.example.workers.dev",
 *   onProgress: (e) => console.log(e.type),
 * };
 * const cache = createTransformersCache(options);
 * ```
 */
export interface TransformersCacheOptions extends PullModelOptions {
  /**
   * transformers.js model id → OCI reference (`{ "tiny-bert": "ghcr.io/acme/tiny-bert:v1" }`). Ids
   * of the form `oci:<reference>` need no entry (see `createTransformersCache`).
   */
  models?: Record<string, string>;
  /**
   * Where keys that are not OCI models go (a Cache API cache, say, for models transformers.js
   * downloads itself). Default: none, every such key is a miss and `put` drops it.
   */
  fallback?: TransformersCacheLike;
}

/**
 * The cache `createTransformersCache` makes: transformers.js's interface, and the pulls behind it.
 *
 * @example
 * ```ts
 * import { createTransformersCache, type TransformersCache } from "oci-model-loader/transformers";
 *
 * const cache: TransformersCache = createTransformersCache();
 * const model = await cache.pull("oci:ghcr.io/acme/tiny-bert:v1"); // before pipeline(), to fail early
 * console.log(model.digest);
 * ```
 */
export interface TransformersCache extends TransformersCacheLike {
  /**
   * Answers a key of an OCI model's file with a streamed `Response` over the store (its
   * `content-length` set, nothing read until its body is), pulling the model on its first key. A
   * failed pull answers with a `Response` whose body fails with the pull's `OciError`, so that
   * transformers.js rejects with it instead of treating a miss as a reason to download. A file the
   * model does not have, and a key of no OCI model, are misses (or go to `fallback`).
   *
   * @example
   * ```ts
   * import { createTransformersCache } from "oci-model-loader/transformers";
   *
   * const cache = createTransformersCache();
   * const response = await cache.match("https://huggingface.co/oci:ghcr.io/acme/tiny-bert:v1/resolve/main/config.json");
   * console.log(await response?.json());
   * ```
   */
  match(request: string): Promise<Response | undefined>;
  /**
   * The model behind a model id, pulled once per cache (concurrent and later calls share it; a failed
   * pull is forgotten, so the next call tries again). Call it first to show a pull's progress, or to
   * fail early.
   *
   * @param modelId A key of `models`, or `oci:<reference>`.
   * @returns The pulled model.
   * @throws {OciError} `INVALID_ARGUMENT` when the id names no OCI model; the pull's errors.
   *
   * @example
   * ```ts
   * import { createTransformersCache } from "oci-model-loader/transformers";
   *
   * const cache = createTransformersCache({ models: { "tiny-bert": "ghcr.io/acme/tiny-bert:v1" } });
   * const model = await cache.pull("tiny-bert");
   * console.log([...model.files.keys()]);
   * ```
   */
  pull(modelId: string): Promise<Model>;
  /**
   * The OCI reference a model id stands for: its entry in `models`, else the reference of an
   * `oci:<reference>` id; undefined for any other id.
   *
   * @example
   * ```ts
   * import { createTransformersCache } from "oci-model-loader/transformers";
   *
   * const cache = createTransformersCache();
   * console.log(cache.referenceOf("oci:ghcr.io/acme/tiny-bert:v1")); // "ghcr.io/acme/tiny-bert:v1"
   * ```
   */
  referenceOf(modelId: string): string | undefined;
}

/**
 * The prefix of a model id that is an OCI reference: `oci:ghcr.io/acme/tiny-bert:v1`.
 *
 * @example
 * ```ts
 * import { OCI_MODEL_ID_PREFIX } from "oci-model-loader/transformers";
 *
 * const modelId = `${OCI_MODEL_ID_PREFIX}ghcr.io/acme/tiny-bert:v1`; // for pipeline(task, modelId)
 * ```
 */
export const OCI_MODEL_ID_PREFIX = "oci:";

/** A key split into the model id it names and the file path after it (with or without `resolve/<rev>/`). */
interface ParsedKey {
  modelId: string;
  /** What followed the id: `config.json`, or `resolve/main/onnx/model.onnx`. */
  rest: string;
}

/** Positions where `needle` starts a path segment of `key` (at the start, or right after a `/`). */
function* segmentStarts(key: string, needle: string): Generator<number> {
  for (let at = key.indexOf(needle); at >= 0; at = key.indexOf(needle, at + 1))
    if (at === 0 || key[at - 1] === "/") yield at;
}

/**
 * The `oci:<reference>` id in a key: the reference runs to the end of the last path segment that
 * holds a tag or digest (`:` or `@`), so `oci:localhost:5000/acme/bert:v1/onnx/model.onnx` is
 * `localhost:5000/acme/bert:v1` and `onnx/model.onnx`.
 */
function conventionId(key: string): ParsedKey | undefined {
  for (const at of segmentStarts(key, OCI_MODEL_ID_PREFIX)) {
    const segments = key.slice(at + OCI_MODEL_ID_PREFIX.length).split("/");
    let last = -1;
    for (let i = 0; i < segments.length; i++) if (/[:@]/.test(segments[i] as string)) last = i;
    if (last < 0 || last === segments.length - 1) continue;
    const reference = segments.slice(0, last + 1).join("/");
    return { modelId: `${OCI_MODEL_ID_PREFIX}${reference}`, rest: segments.slice(last + 1).join("/") };
  }
  return undefined;
}

/** The model id a key names, among the mapped ids (longest first) and the `oci:` convention. */
function parseKey(key: string, mapped: readonly string[]): ParsedKey | undefined {
  for (const modelId of mapped) {
    for (const at of segmentStarts(key, `${modelId}/`)) {
      return { modelId, rest: key.slice(at + modelId.length + 1) };
    }
  }
  return conventionId(key);
}

/** The model's file a key's rest names: the rest itself, or what follows `resolve/<revision>/`. */
function filePath(model: Model, rest: string): string | undefined {
  const path = (p: string) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  };
  if (model.files.has(path(rest))) return path(rest);
  const resolved = /^resolve\/[^/]+\/(.+)$/.exec(rest)?.[1];
  return resolved !== undefined && model.files.has(path(resolved)) ? path(resolved) : undefined;
}

const contentType = (path: string) =>
  path.endsWith(".json")
    ? "application/json"
    : path.endsWith(".txt")
      ? "text/plain"
      : "application/octet-stream";

/**
 * A body that opens its source on the first read (a `Response` nobody reads holds nothing open) and
 * fails with the source's error; `highWaterMark: 0` so that making it reads nothing.
 */
function lazyBody(open: () => Promise<ReadableStream<Uint8Array>>): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        reader ??= (await open()).getReader();
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return reader?.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A `Response` whose readers fail with the body stream's own error: Chromium's native `arrayBuffer()`
 * turns any failed stream into `TypeError: Failed to fetch`, which would hide an `OciError`.
 */
class StoreResponse extends Response {
  override async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer;
  }
  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (!this.body) return new Uint8Array(0);
    const size = Number(this.headers.get("content-length") ?? Number.NaN);
    const chunks: Uint8Array[] = [];
    let out = Number.isSafeInteger(size) ? new Uint8Array(size) : undefined;
    let at = 0;
    const reader = this.body.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      if (!out) chunks.push(r.value);
      else if (at + r.value.byteLength > out.byteLength)
        throw new OciError(
          "SIZE_MISMATCH",
          `Cannot read a stored file: it holds more than its ${size} bytes`,
        );
      else out.set(r.value, at);
      at += r.value.byteLength;
    }
    if (out && at !== out.byteLength)
      throw new OciError("SIZE_MISMATCH", `Cannot read a stored file: it holds ${at} of its ${size} bytes`);
    if (!out) {
      out = new Uint8Array(at);
      at = 0;
      for (const chunk of chunks) {
        out.set(chunk, at);
        at += chunk.byteLength;
      }
    }
    return out;
  }
  override async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }
  override async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/** A response whose body fails with `error` when read: how a failed pull reaches transformers.js. */
function failedResponse(error: unknown): Response {
  const body = new ReadableStream<Uint8Array>(
    { pull: (controller) => controller.error(error) },
    { highWaterMark: 0 },
  );
  return new StoreResponse(body, {
    headers: { "x-oci-error": error instanceof OciError ? error.code : "ERROR" },
  });
}

/**
 * A cache for transformers.js's `env.customCache` that answers an OCI model's files from this
 * library's store: set `env.useCustomCache = true` and `env.customCache = createTransformersCache(…)`.
 *
 * Which model ids are OCI models: the keys of `options.models` (mapped to a reference), and any id
 * `oci:<reference>` whose reference carries a tag or a digest (`oci:ghcr.io/acme/bert:v1`,
 * `oci:localhost:5000/acme/bert@sha256:…`). transformers.js asks the cache for
 * `env.localModelPath + id + "/" + file` and for `env.remoteHost + "{model}/resolve/{revision}/" + file`
 * (the default `remotePathTemplate`; a template without `resolve/` works too): both are answered. The
 * revision is ignored (the reference names the version). An `oci:` id is not a Hugging Face id, so
 * transformers.js never downloads one itself; a mapped id that looks like one is downloaded from
 * `env.remoteHost` for a file the OCI model lacks, so set `env.remoteHost` to a host you own (or
 * `env.allowRemoteModels = false` with `env.allowLocalModels = true`) to keep it offline.
 *
 * The first key of a model pulls it with `options` (the `PullModelOptions`: store, proxy,
 * credentials, progress…): every byte verified, a cut download resumed, a model already in the
 * store revalidated with one manifest request and no blob request. Each file is answered as a
 * `Response` streamed from the store. A pull that fails (`DIGEST_MISMATCH`, `UNAUTHORIZED`,
 * `NETWORK`…) is not a miss: the response's body fails with the `OciError`, and the `pipeline(…)` or
 * `from_pretrained(…)` call rejects with it. `put` stores nothing for an OCI model (its files come
 * from the registry, verified); other keys go to `options.fallback`.
 *
 * @param options Model ids to map, a fallback cache, and the pull's options.
 * @returns The cache, with `pull` and `referenceOf`.
 *
 * @example
 * ```ts
 * import { env, pipeline } from "@huggingface/transformers";
 * import { createTransformersCache } from "oci-model-loader/transformers";
 *
 * env.useCustomCache = true;
 * env.customCache = createTransformersCache({ proxy: "https://proxy.example.com" });
 * const extractor = await pipeline("feature-extraction", "oci:ghcr.io/acme/tiny-bert:v1");
 * const embedding = await extractor("Hello", { pooling: "mean", normalize: true });
 * ```
 */
export function createTransformersCache(options: TransformersCacheOptions = {}): TransformersCache {
  const { models = {}, fallback, ...pullOptions } = options;
  for (const [id, reference] of Object.entries(models)) {
    if (id === "" || id.endsWith("/"))
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot map model id "${id}": an id must be a non-empty path without a trailing /`,
      );
    parseReference(reference);
  }
  const mapped = Object.keys(models).sort((a, b) => b.length - a.length);
  const pulls = new Map<string, Promise<Model>>();

  const referenceOf = (modelId: string): string | undefined => {
    if (Object.hasOwn(models, modelId)) return models[modelId];
    if (!modelId.startsWith(OCI_MODEL_ID_PREFIX)) return undefined;
    const reference = modelId.slice(OCI_MODEL_ID_PREFIX.length);
    return /[:@][^/]*$/.test(reference) ? reference : undefined;
  };

  const pull = (modelId: string): Promise<Model> => {
    const running = pulls.get(modelId);
    if (running) return running;
    const reference = referenceOf(modelId);
    if (reference === undefined) {
      return Promise.reject(
        new OciError(
          "INVALID_ARGUMENT",
          `Cannot pull model "${modelId}": it is neither in the cache's models nor an ${OCI_MODEL_ID_PREFIX}<reference> with a tag or digest`,
        ),
      );
    }
    const promise = (async () => pullModel(reference, pullOptions))();
    pulls.set(modelId, promise);
    promise.catch(() => {
      if (pulls.get(modelId) === promise) pulls.delete(modelId);
    });
    return promise;
  };

  const ours = (request: string): ParsedKey | undefined => {
    const parsed = parseKey(request, mapped);
    return parsed && referenceOf(parsed.modelId) !== undefined ? parsed : undefined;
  };

  return {
    referenceOf,
    pull,
    async match(request) {
      const key = String(request);
      const parsed = ours(key);
      if (!parsed) return fallback?.match(key);
      let model: Model;
      try {
        model = await pull(parsed.modelId);
      } catch (error) {
        return failedResponse(error);
      }
      const path = filePath(model, parsed.rest);
      if (path === undefined) return undefined;
      const file = model.file(path);
      return new StoreResponse(
        lazyBody(() => file.stream()),
        {
          headers: {
            "content-length": String(file.size),
            "content-type": contentType(path),
            // A file served in place from a tar layer is named by where it lies in that layer.
            etag: `"${file.digest ?? `${file.layer?.digest}+${file.layer?.offset}`}"`,
          },
        },
      );
    },
    async put(request, response, progress) {
      const key = String(request);
      if (ours(key)) {
        await response.body?.cancel();
        return;
      }
      if (fallback) await fallback.put(key, response, progress);
      else await response.body?.cancel();
    },
    async delete(request) {
      const key = String(request);
      if (ours(key)) return false;
      return (await fallback?.delete?.(key)) ?? false;
    },
  };
}
