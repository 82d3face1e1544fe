/**
 * wllama (llama.cpp in WebAssembly) over this library's verified stores: a storage backend for
 * wllama's `CacheManager`, and a helper that loads a pulled GGUF model (one file or split) into a
 * `Wllama` instance. `@wllama/wllama` is an optional peer dependency: nothing here imports it; the
 * types below are the parts of its interfaces this module uses.
 *
 * @module
 */
import { type CreateHasher, digestStream, parseDigest } from "../digest/hasher.js";
import { createDefaultHasher } from "../digest/hashers.js";
import { OciError } from "../errors.js";
import type { Model, ModelFile } from "../model/model.js";
import type { ModelFileInfo } from "../model/record.js";
import type { Descriptor } from "../oci/manifest.js";
import { MediaType } from "../oci/media-types.js";
import type { BlobRef, Store } from "../store/types.js";

/** The hint wllama passes with a key: the file's SHA-256, as `sha256:<hex>` or bare hex. */
export interface WllamaFileHint {
  /** The file's SHA-256: an OCI digest (`sha256:<hex>`) or its 64 hex digits (Hugging Face's LFS oid). */
  sha256: string;
}

/**
 * wllama's `StorageBackend` (`@wllama/wllama/esm/storage`), structurally: what its `CacheManager`
 * reads and writes model files through. Keys are `${sha1hex(url)}_${basename}` for a file and
 * `__metadata__<key>` for its JSON metadata (`originalURL`, `originalSize`, `etag`, `sha256`).
 */
export interface WllamaStorageBackend {
  /** Whether the backend can run here. */
  isSupported(): boolean;
  /** The file under `key` (or, with a hint, the file with that SHA-256), or null. */
  read(key: string, hint?: WllamaFileHint): Promise<Blob | null>;
  /** Stores `stream` under `key`, replacing what was there. */
  write(key: string, stream: ReadableStream, hint?: WllamaFileHint): Promise<void>;
  /** The stored size in bytes, or -1 when there is no such file. */
  getSize(key: string, hint?: WllamaFileHint): Promise<number>;
  /** Every key (metadata keys too) and its size. */
  list(): Promise<Array<{ key: string; size: number }>>;
  /** Forgets `key`; no-op when absent. */
  delete(key: string): Promise<void>;
}

/** A wllama storage backend over a `Store`, which can also make pulled models visible to wllama. */
export interface OciWllamaStorage extends WllamaStorageBackend {
  /**
   * Makes a pulled GGUF model's weight files visible to wllama's cache under the URLs
   * `wllamaModelUrls(model)` gives, with their metadata, so that `wllama.loadModelFromUrl(url)`
   * reads them from the store: no network request, no copy into the cache. Writes only names (tags)
   * and a small JSON blob per file.
   *
   * @param model A model pulled with its weights, GGUF.
   * @returns The URL of its first file: what to pass to `loadModelFromUrl`.
   * @throws {OciError} `UNSUPPORTED_ARTIFACT` when its weights are not GGUF; `NOT_FOUND` when they
   *   are not in the store (a config-only pull).
   */
  addModel(model: Model): Promise<string>;
}

/** Options of `createWllamaStorage`. */
export interface WllamaStorageOptions {
  /** Prefix of the store's tag names that hold wllama's keys. Default `"wllama:"`. */
  prefix?: string;
  /** Hash implementation for files wllama writes without a SHA-256 hint. Default: the store's default choice. */
  createHasher?: CreateHasher;
}

/** Options of `loadWllamaModel`. */
export interface LoadWllamaModelOptions<P> {
  /** wllama's own load parameters (`LoadModelParams`: `n_ctx`, `n_threads`, `n_gpu_layers`…). */
  params?: P;
  /** Aborts reading the files from the store (`ABORTED`); wllama's own load is not interruptible. */
  signal?: AbortSignal;
}

/** The part of a `Wllama` instance `loadWllamaModel` uses. */
export interface WllamaLike<P> {
  /** Loads a model from its GGUF files in order (split files in split order). */
  loadModel(blobs: Blob[], params?: P): Promise<void>;
  /** Whether a model is loaded already. */
  isModelLoaded(): boolean;
}

/** artifactType of the small manifest a data key's tag points at (it keeps the file from `gc`). */
export const WLLAMA_ENTRY_TYPE = "application/vnd.oci-model-loader.wllama.entry.v1+json";

const METADATA_PREFIX = "__metadata__";
const SPLIT = /-(\d{5})-of-(\d{5})\.gguf$/i;
const GGUF_MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const EMPTY_JSON = new TextEncoder().encode("{}");
const EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const ENTRY_LIMIT = 64 * 1024;

/** `sha256:<hex>` from a hint (`sha256:<hex>` or bare hex), or undefined when it is neither. */
function hintDigest(hint: WllamaFileHint | undefined): string | undefined {
  const value = hint?.sha256?.toLowerCase();
  if (!value) return undefined;
  const digest = value.startsWith("sha256:") ? value : `sha256:${value}`;
  return /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined;
}

async function sha1Hex(text: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The key wllama's `CacheManager` stores a URL's file under: `${sha1hex(url)}_${last path segment}`.
 *
 * @param url The file's URL, as given to wllama.
 * @returns The storage key.
 * @example
 * ```ts
 * import { wllamaCacheKey } from "oci-model-loader/wllama";
 *
 * const key = await wllamaCacheKey("https://example.com/m/model.gguf"); // "<40 hex digits>_model.gguf"
 * console.log(key);
 * ```
 */
export async function wllamaCacheKey(url: string): Promise<string> {
  return `${await sha1Hex(url)}_${url.split("/").pop() ?? ""}`;
}

/** The GGUF weight files of a model, in split order; refuses anything else. */
function ggufWeights(model: Model, action: string): ModelFileInfo[] {
  if (model.weights.length === 0) {
    throw new OciError("UNSUPPORTED_ARTIFACT", `Cannot ${action}: the model has no weight files`);
  }
  const files = model.weights.map((path) => {
    const file = model.files.get(path);
    if (!file) throw new OciError("NOT_FOUND", `Cannot ${action}: the model has no file ${path}`);
    if (!/\.gguf$/i.test(path) && !file.mediaType.includes("gguf")) {
      throw new OciError(
        "UNSUPPORTED_ARTIFACT",
        `Cannot ${action}: its weight file ${path} is not GGUF (wllama runs llama.cpp's GGUF models only)`,
      );
    }
    return file;
  });
  // Split files named as llama.cpp's gguf-split names them load in their numbered order, whatever
  // the manifest's; any other names keep the manifest's order.
  const numbered = files.map((f) => SPLIT.exec(f.path));
  if (files.length > 1 && numbered.every((m) => m !== null)) {
    const index = new Map(files.map((f, i) => [f, Number(numbered[i]?.[1])]));
    files.sort((a, b) => (index.get(a) ?? 0) - (index.get(b) ?? 0));
  }
  return files;
}

/**
 * A weight file's bytes from the store, after checking that it starts with the GGUF magic:
 * `NOT_FOUND` when it is not stored, `UNSUPPORTED_ARTIFACT` when it is not GGUF.
 */
async function checkedWeight(
  model: Model,
  path: string,
  action: string,
  signal?: AbortSignal,
): Promise<ModelFile> {
  const file = model.file(path);
  const options = signal ? { signal } : {};
  let head: Uint8Array;
  try {
    head = new Uint8Array(
      await new Response(await file.stream({ offset: 0, length: 4, ...options })).arrayBuffer(),
    );
  } catch (error) {
    if (error instanceof OciError && error.code === "NOT_FOUND") {
      const hint = model.complete ? "" : " (this was a config-only pull: pull again with weights)";
      throw new OciError(
        "NOT_FOUND",
        `Cannot ${action}: its weight file ${path} is not in the store${hint}`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  if (!GGUF_MAGIC.every((b, i) => head[i] === b)) {
    throw new OciError(
      "UNSUPPORTED_ARTIFACT",
      `Cannot ${action}: its weight file ${path} does not start with the GGUF magic bytes`,
    );
  }
  return file;
}

/**
 * The URLs under which `OciWllamaStorage.addModel` shows a model's GGUF files to wllama, in load
 * order: `oci://<registry>/<repository>@<manifest digest>/model.gguf`, or
 * `…/model-0000i-of-0000N.gguf` for split files (the names wllama expands a split model's first URL
 * into). They are names only: wllama never fetches them once `addModel` has run.
 *
 * @param model A pulled GGUF model.
 * @returns One URL per weight file; the first is the one to load.
 * @throws {OciError} `UNSUPPORTED_ARTIFACT` when its weights are not GGUF.
 * @example
 * ```ts
 * import { wllamaModelUrls } from "oci-model-loader/wllama";
 *
 * const model = await openModel("ghcr.io/acme/tiny-llama:v1"); // pulled before
 * const [url] = wllamaModelUrls(model); // "oci://ghcr.io/acme/tiny-llama@sha256:…/model.gguf"
 * console.log(url);
 * ```
 */
export function wllamaModelUrls(model: Model): string[] {
  const files = ggufWeights(model, `show ${model.reference} to wllama`);
  const at = model.reference.lastIndexOf("@");
  const withoutDigest = at >= 0 ? model.reference.slice(0, at) : model.reference;
  const slash = withoutDigest.indexOf("/");
  const colon = withoutDigest.lastIndexOf(":");
  const name = colon > slash ? withoutDigest.slice(0, colon) : withoutDigest;
  const base = `oci://${name}@${model.digest}`;
  const n = String(files.length).padStart(5, "0");
  return files.length === 1
    ? [`${base}/model.gguf`]
    : files.map((_, i) => `${base}/model-${String(i + 1).padStart(5, "0")}-of-${n}.gguf`);
}

/**
 * A wllama storage backend over a `Store`: plug it into wllama's `CacheManager` and wllama reads and
 * writes model files through the store, verified. A read with a hint whose `sha256` is a blob the
 * store holds returns that blob, whatever the key: a GGUF layer pulled from a registry and the same
 * file on Hugging Face are one blob. A write goes through the store's verified push (against the
 * hint's SHA-256 when there is one); `addModel` shows pulled models to wllama without any write of
 * their bytes. Keys are kept as the store's tags (`prefix` + key); `delete` removes only the tag,
 * and the store's `gc` frees the bytes no other name needs.
 *
 * @param store The store (OPFS, IndexedDB, Cache API, memory) to read and write.
 * @param options The tag prefix and the hasher.
 * @returns The backend, with `addModel`.
 * @example
 * ```ts
 * import { CacheManager, Wllama } from "@wllama/wllama";
 * import { createWllamaStorage } from "oci-model-loader/wllama";
 *
 * const store = createOpfsStore("models");
 * const model = await pullModel("ghcr.io/acme/tiny-llama:v1", { store }); // verified, into OPFS
 * const storage = createWllamaStorage(store);
 * const wllama = new Wllama({ default: "/wllama.wasm" }, { cacheManager: new CacheManager([storage]) });
 * await wllama.loadModelFromUrl(await storage.addModel(model), { n_threads: 1 }); // no request
 * ```
 */
export function createWllamaStorage(store: Store, options: WllamaStorageOptions = {}): OciWllamaStorage {
  const prefix = options.prefix ?? "wllama:";
  const createHasher = options.createHasher ?? createDefaultHasher;
  const isMetadata = (key: string) => key.startsWith(METADATA_PREFIX);
  const action = (verb: string, key: string) => `${verb} wllama's ${key}`;

  const blobOf = (blob: BlobRef): Promise<Blob> => store.blob(blob);

  /** What a tag holds: a metadata key's JSON blob itself, a data key's file through its entry manifest. */
  const entryFile = async (key: string): Promise<Descriptor | undefined> => {
    const tagged = await store.resolve(prefix + key);
    if (!tagged || isMetadata(key)) return tagged;
    if (tagged.size > ENTRY_LIMIT) return undefined;
    const manifest = JSON.parse(await new Response(await store.fetch(tagged)).text()) as {
      artifactType?: string;
      layers?: Descriptor[];
    };
    return manifest.artifactType === WLLAMA_ENTRY_TYPE ? manifest.layers?.[0] : undefined;
  };

  const pushBytes = async (bytes: Uint8Array, mediaType: string): Promise<Descriptor> => {
    const digest = await digestStream(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(), createHasher);
    const descriptor = { mediaType, digest, size: bytes.byteLength };
    await store.push(descriptor, new Blob([bytes as Uint8Array<ArrayBuffer>]).stream());
    return descriptor;
  };

  /** Names `key` after a file: directly for metadata, through a small manifest for data (so `gc` keeps it). */
  const name = async (key: string, file: Descriptor): Promise<void> => {
    if (isMetadata(key)) return store.tag(prefix + key, file);
    await store.push({ digest: EMPTY_DIGEST, size: 2 }, new Blob([EMPTY_JSON]).stream());
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: WLLAMA_ENTRY_TYPE,
        config: { mediaType: MediaType.OciEmpty, digest: EMPTY_DIGEST, size: 2 },
        layers: [file],
        annotations: { "org.opencontainers.image.title": key },
      }),
    );
    await store.tag(prefix + key, await pushBytes(manifest, MediaType.OciManifest));
  };

  /** The size of a blob the store holds, by digest, or undefined. */
  const sizeOf = async (digest: string): Promise<number | undefined> =>
    (await store.exists({ digest }))
      ? (await store.list()).find((b) => b.digest === digest)?.size
      : undefined;

  const storage: OciWllamaStorage = {
    isSupported: () => true,

    async read(key, hint) {
      const digest = hintDigest(hint);
      const size = digest ? await sizeOf(digest) : undefined;
      if (digest && size !== undefined) return blobOf({ digest, size });
      const file = await entryFile(key);
      return file && (await store.exists(file)) ? blobOf(file) : null;
    },

    async write(key, stream, hint) {
      const expected = hintDigest(hint);
      const mediaType = isMetadata(key) ? "application/json" : "application/octet-stream";
      const known = expected ? await sizeOf(expected) : undefined;
      if (expected && known !== undefined) {
        // The store holds these bytes already: nothing to read, only the name to write.
        await stream.cancel();
        return name(key, { mediaType, digest: expected, size: known });
      }
      // A store push needs the size first: the bytes wait in a Blob (the browser's blob storage,
      // not the JS heap), then the push hashes them again and commits only on a match.
      const held = await new Response(stream).blob();
      const digest = expected ?? (await digestStream(held.stream(), createHasher));
      const file = { mediaType, digest, size: held.size };
      try {
        await store.push(file, held.stream());
      } catch (error) {
        if (error instanceof OciError) {
          throw new OciError(error.code, `Cannot ${action("store", key)}: ${error.message}`, {
            cause: error,
          });
        }
        throw error;
      }
      await name(key, file);
    },

    async getSize(key, hint) {
      const digest = hintDigest(hint);
      if (digest && !isMetadata(key)) {
        const size = await sizeOf(digest);
        if (size !== undefined) {
          // The store holds this file already (pulled from a registry, or written under another
          // key): name it under this key too, so that wllama's list finds it after its download
          // check returns early.
          const named = await entryFile(key);
          if (named?.digest !== digest)
            await name(key, { mediaType: "application/octet-stream", digest, size });
          return size;
        }
      }
      const file = await entryFile(key);
      return file && (await store.exists(file)) ? file.size : -1;
    },

    async list() {
      const out: Array<{ key: string; size: number }> = [];
      for (const tag of (await store.tags()).keys()) {
        if (!tag.startsWith(prefix)) continue;
        const key = tag.slice(prefix.length);
        const file = await entryFile(key);
        if (file && (await store.exists(file))) out.push({ key, size: file.size });
      }
      return out;
    },

    async delete(key) {
      if (await store.resolve(prefix + key)) await store.untag(prefix + key);
    },

    async addModel(model) {
      const what = `show ${model.reference} to wllama`;
      const files = ggufWeights(model, what);
      const urls = wllamaModelUrls(model);
      for (const [i, file] of files.entries()) {
        const weight = await checkedWeight(model, file.path, what);
        // A file served in place from a tar layer has no digest nor blob of its own: wllama names
        // files by their SHA-256, so it is hashed here, and a copy stored.
        const digest = file.digest ?? (await digestStream(await weight.stream(), createHasher));
        const descriptor = { mediaType: "application/octet-stream", digest, size: file.size };
        if (!(await store.exists(descriptor))) await store.push(descriptor, await weight.stream());
        const url = urls[i] as string;
        const key = await wllamaCacheKey(url);
        await name(key, descriptor);
        const hex = parseDigest(digest).hex;
        const metadata = { originalURL: url, originalSize: file.size, etag: hex, sha256: hex };
        const json = new TextEncoder().encode(JSON.stringify(metadata));
        await name(METADATA_PREFIX + key, await pushBytes(json, "application/json"));
      }
      return urls[0] as string;
    },
  };
  return storage;
}

/**
 * A pulled GGUF model's weight files as Blobs, in load order (split files in split order), over
 * what the store holds (`ModelFile.blob`): in OPFS and the fs store the stored files themselves, so
 * no byte of the weights passes through the JS heap.
 *
 * @param model A model pulled with its weights, GGUF.
 * @param options `signal` aborts the reads.
 * @returns One Blob per file, to pass to `wllama.loadModel`.
 * @throws {OciError} `UNSUPPORTED_ARTIFACT` when its weights are not GGUF (checked by name or media
 *   type, then by the file's magic bytes); `NOT_FOUND` when they are not in the store.
 * @example
 * ```ts
 * import { ggufBlobs } from "oci-model-loader/wllama";
 *
 * const blobs = await ggufBlobs(await openModel("ghcr.io/acme/tiny-llama:v1")); // pulled before
 * console.log(blobs.map((b) => b.size)); // one per file, split files in order
 * ```
 */
export async function ggufBlobs(model: Model, options: { signal?: AbortSignal } = {}): Promise<Blob[]> {
  const what = `load ${model.reference} into wllama`;
  const blobs: Blob[] = [];
  for (const file of ggufWeights(model, what)) {
    blobs.push(await (await checkedWeight(model, file.path, what, options.signal)).blob());
  }
  return blobs;
}

/**
 * Loads a pulled GGUF model (one file, or split files in order) into a `Wllama` instance from the
 * store: the files become Blobs without passing whole through the JS heap (`ggufBlobs`), and wllama
 * reads them from there. Pull first (`pullModel`), so that every byte was verified.
 *
 * @param wllama A `Wllama` with no model loaded.
 * @param model A model pulled with its weights, GGUF.
 * @param options wllama's load parameters, and a signal for the store reads.
 * @throws {OciError} `INVALID_ARGUMENT` when `wllama` has a model loaded already;
 *   `UNSUPPORTED_ARTIFACT` when the weights are not GGUF or llama.cpp refuses them (the cause is
 *   wllama's error); `NOT_FOUND` when they are not in the store.
 * @example
 * ```ts
 * import { Wllama } from "@wllama/wllama";
 * import { loadWllamaModel } from "oci-model-loader/wllama";
 *
 * const model = await pullModel("ghcr.io/acme/tiny-llama:v1");
 * const wllama = new Wllama({ default: "/wllama.wasm" }); // the package's wasm, served by the app
 * await loadWllamaModel(wllama, model, { params: { n_ctx: 512, n_threads: 1 } });
 * ```
 */
export async function loadWllamaModel<P>(
  wllama: WllamaLike<P>,
  model: Model,
  options: LoadWllamaModelOptions<P> = {},
): Promise<void> {
  const what = `load ${model.reference} into wllama`;
  if (wllama.isModelLoaded()) {
    throw new OciError("INVALID_ARGUMENT", `Cannot ${what}: this Wllama instance has a model loaded already`);
  }
  const blobs = await ggufBlobs(model, options.signal ? { signal: options.signal } : {});
  try {
    await wllama.loadModel(blobs, options.params);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new OciError("UNSUPPORTED_ARTIFACT", `Cannot ${what}: wllama refused it (${reason})`, {
      cause: error,
    });
  }
}
