import { type ArchiveLimits, safeEntryPath } from "../archive/tar.js";
import { createDefaultHasher } from "../digest/hashers.js";
import { abortError, OciError } from "../errors.js";
import type { Descriptor } from "../oci/manifest.js";
import { parseReference, type Reference, withDigest } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import { createRemoteStore } from "../registry/remote-store.js";
import { createDefaultStore } from "../store/default.js";
import { copyBlob, copyGraph } from "../store/graph.js";
import type { PushResult, Store } from "../store/types.js";
import type { PullEvent } from "./events.js";
import { isUnpacked, type LayerReader, layerReader, readStoredLayer, storeEntries } from "./extract.js";
import { detectFormat } from "./format.js";
import { type PlannedLayer, planLayers } from "./layers.js";
import { checkConfigSizes, configJsonFile, type Model, modelFromRecord } from "./model.js";
import { findRecord, keptByRecord, type ModelFileInfo, type ModelRecord, writeRecord } from "./record.js";

/**
 * Options of `pullModel`: those of the registry client (credentials, proxy, fetch, hasher, plain
 * http, retries, timeout, platform) and where and how to pull.
 */
export interface PullModelOptions extends RegistryClientOptions {
  /** Where the model goes. Default `createDefaultStore()` (OPFS, else IndexedDB, else memory). */
  store?: Store;
  /** A client to reuse instead of making one from the options. */
  client?: RegistryClient;
  /** Fetch the weights (default true). False: manifest, config and config files only. */
  weights?: boolean;
  /** Layers fetched at a time. Default 4. */
  concurrency?: number;
  /** Aborts this caller's pull (`ABORTED`, or `TIMEOUT` for a timeout signal); see `pullModel`. */
  signal?: AbortSignal;
  /** Called with each `PullEvent` of the pull, in order. */
  onProgress?: (event: PullEvent) => void;
  /** Limits for archive layers. */
  archive?: ArchiveLimits;
  /**
   * Keep a compressed layer (a `tar+gzip`, `tar+zstd`, or a file compressed as a whole) once its
   * files are stored. Default false: the store holds the model's files once, and the model cannot
   * be pushed again byte-identical from this store (`pushModel` says which layer is missing).
   */
  keepArchives?: boolean;
}

interface Job {
  promise: Promise<Model>;
  /** The options the pull runs with: a caller joins only with equal ones. */
  options: PullModelOptions;
  listeners: Set<(event: PullEvent) => void>;
  /** Joined callers not detached by their signal; when none is left, the pull is aborted. */
  callers: number;
  /** Aborts the pull; absent when its first caller has no signal (it can never detach). */
  controller: AbortController | undefined;
}

/**
 * Pulls in flight per store and reference, so concurrent pulls of one model share one download.
 * Callers that name no store are keyed together: a joined caller gets the first caller's default
 * store (a new memory store per call in Node would otherwise share nothing, and keeping one for
 * good would keep every model pulled into it).
 */
const inFlight = new WeakMap<Store | typeof DEFAULT_STORE, Map<string, Job[]>>();
const DEFAULT_STORE = {};

/** Options that are each caller's own, never shared by a joined pull. */
const PER_CALLER = new Set<string>(["signal", "onProgress"]);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Equal as option values: the same value, or arrays and plain objects (a credential map, a
 * platform, a plain-http host list) holding equal values. Functions, clients and stores only
 * when they are the same object. Deep structures are compared by identity past a few levels.
 */
function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (Object.is(a, b)) return true;
  if (depth > 4) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => sameValue(v, b[i], depth + 1));
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => sameValue(a[k], b[k], depth + 1));
}

function sameOptions(a: PullModelOptions, b: PullModelOptions): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every(
    (k) => PER_CALLER.has(k) || sameValue(a[k as keyof PullModelOptions], b[k as keyof PullModelOptions]),
  );
}

/**
 * Attaches a caller to a pull: its progress listener, and its signal, which detaches only this
 * caller (its promise rejects at once); the pull is aborted when its last caller detaches.
 */
function join(job: Job, jobs: Job[], options: PullModelOptions, action: string): Promise<Model> {
  const { signal, onProgress } = options;
  if (signal?.aborted) return Promise.reject(abortError(action, signal.reason));
  // A closure per caller: two callers passing one function each get their own entry.
  const listener = onProgress && ((event: PullEvent) => onProgress(event));
  if (listener) job.listeners.add(listener);
  job.callers++;
  if (!signal) return job.promise;
  return new Promise<Model>((resolve, reject) => {
    const detach = () => {
      if (listener) job.listeners.delete(listener);
      reject(abortError(action, signal.reason));
      if (--job.callers > 0) return;
      // Nobody waits for it any more: a new caller must start afresh, not join a dying pull.
      const at = jobs.indexOf(job);
      if (at >= 0) jobs.splice(at, 1);
      job.controller?.abort(signal.reason);
    };
    signal.addEventListener("abort", detach, { once: true });
    job.promise.then(
      (model) => {
        signal.removeEventListener("abort", detach);
        resolve(model);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", detach);
        reject(error);
      },
    );
  });
}

function unsafeLayerPath(path: string, action: string, cause?: unknown): OciError {
  return new OciError(
    "MANIFEST_INVALID",
    `Cannot ${action}: the layer path "${path}" is not a safe relative path`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * A path from a layer annotation, normalised, or undefined where it names the model's folder
 * itself ("." or "./"); refused when it could escape that folder.
 */
function layerPath(path: string, action: string): string | undefined {
  try {
    return safeEntryPath(path, "a layer path");
  } catch (cause) {
    throw unsafeLayerPath(path, action, cause);
  }
}

/** A file's path from a layer annotation: as `layerPath`, and it must name a file, not the folder. */
function safeFilePath(path: string, action: string): string {
  const safe = layerPath(path, action);
  if (safe === undefined) throw unsafeLayerPath(path, action);
  return safe;
}

/**
 * The file a layer that is not an archive becomes: its annotated path, else one named by its digest.
 * A file compressed as a whole gets its digest and size once unpacked (`layerReader`), and its media
 * type without the compression suffix.
 */
function rawFile(layer: PlannedLayer, action: string): ModelFileInfo {
  return {
    path:
      layer.path === undefined ? layer.descriptor.digest.replace(":", "-") : safeFilePath(layer.path, action),
    digest: layer.descriptor.digest,
    size: layer.descriptor.size,
    mediaType: layer.compression
      ? layer.descriptor.mediaType.replace(/\+(gzip|zstd)$/, "")
      : layer.descriptor.mediaType,
    weight: layer.modelWeight,
  };
}

function satisfies(record: ModelRecord, weights: boolean): boolean {
  return !weights || record.pending.length === 0;
}

function refuseDuplicates(files: { path: string }[], action: string): void {
  const seen = new Set<string>();
  for (const { path } of files) {
    if (seen.has(path))
      throw new OciError("UNSUPPORTED_ARTIFACT", `Cannot ${action}: two layers both provide ${path}`);
    seen.add(path);
  }
}

async function pull(
  ref: Reference,
  store: Store,
  options: PullModelOptions,
  emit: (event: PullEvent) => void,
): Promise<Model> {
  const started = Date.now();
  const { signal } = options;
  const weights = options.weights ?? true;
  const createHasher = options.createHasher ?? createDefaultHasher;
  const client = options.client ?? createRegistryClient(options);
  const action = `pull ${ref}`;

  // Known already? By digest: no request at all. By tag: one HEAD to revalidate, or offline use.
  const known = await findRecord(store, ref);
  if (known && satisfies(known, weights)) {
    if (ref.digest) return modelFromRecord(store, known);
    try {
      const head = await client.headManifest(ref, signal ? { signal } : {});
      if (head?.digest === known.digest) return modelFromRecord(store, known);
    } catch (error) {
      if ((error as OciError).code === "NETWORK" || (error as OciError).code === "TIMEOUT")
        return modelFromRecord(store, known);
      throw error;
    }
  }

  const result = await client.getManifest(ref, signal ? { signal } : {});
  // The same manifest pulled under another name (`:latest` and `:v1`): its files are all here.
  const pinned = await findRecord(store, withDigest(ref, result.digest));
  if (pinned && satisfies(pinned, weights)) {
    const record = { ...pinned, reference: ref.toString(), pulledAt: new Date().toISOString() };
    const { mediaType, digest } = result;
    await writeRecord(store, ref, record, { mediaType, digest, size: result.bytes.byteLength }, createHasher);
    return modelFromRecord(store, record);
  }
  const manifest = result.manifest;
  const format = detectFormat(manifest);
  const planned = planLayers(manifest);
  const wanted = planned.filter((l) => weights || !l.weights);
  const rawFiles = new Map(planned.filter((l) => !l.archive).map((l) => [l, rawFile(l, action)]));
  // An archive's annotated name is written nowhere (its entries carry their own paths), but a
  // manifest that names a layer outside the model's folder is hostile: refused all the same.
  for (const l of planned) if (l.archive && l.path !== undefined) layerPath(l.path, action);
  // Refused before any blob is fetched, so a model that could never be opened is never stored.
  // The config.json the model will be read with is known now unless an archive could hold a shallower one.
  const configJson = configJsonFile([...rawFiles.values()]);
  const settled = !configJson?.path.includes("/") || !planned.some((l) => l.archive);
  checkConfigSizes(manifest.config, settled ? configJson : undefined, action);
  // Two file layers naming one path are known from the manifest: refused before a blob is fetched
  // (an archive's entries can clash only once it is extracted, checked again below).
  refuseDuplicates(
    wanted.flatMap((l) => rawFiles.get(l) ?? []),
    action,
  );
  const blobs = [manifest.config, ...wanted.map((l) => l.descriptor)];
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  const present = new Set<string>();
  for (const blob of unique) if (await store.exists(blob)) present.add(blob.digest);
  const totalBytes = unique.reduce((n, b) => n + b.size, 0);
  const storedBytes = unique.filter((b) => present.has(b.digest)).reduce((n, b) => n + b.size, 0);
  emit({
    type: "resolve",
    reference: ref.toString(),
    digest: result.digest,
    format,
    layers: unique.length,
    totalBytes,
    storedBytes,
  });

  // The graph under the manifest, the weights left out when not wanted; the manifest goes in last.
  const manifestDescriptor = {
    mediaType: result.mediaType,
    digest: result.digest,
    size: result.bytes.byteLength,
  };
  const paths = new Map(wanted.map((l) => [l.descriptor.digest, l.path]));
  const copying = new Set([manifest.config.digest, ...paths.keys()]);
  const loaded = new Map<string, number>();
  let fetchedBytes = 0;
  const overall = () => [...loaded.values()].reduce((n, v) => n + v, 0);
  // Archive layers and files compressed as a whole are read while they stream into the store.
  const unpacked = new Map<string, PlannedLayer>();
  for (const l of wanted)
    if (isUnpacked(l) && !unpacked.has(l.descriptor.digest)) unpacked.set(l.descriptor.digest, l);
  const limits = options.archive ?? {};
  const readerFor = (l: PlannedLayer) => layerReader(l, createHasher, limits, rawFiles.get(l));
  const readers = new Map<string, LayerReader>();
  const remote = createRemoteStore(ref, { client });
  const withSignal = signal ? { signal } : {};
  let copied: Map<string, PushResult>;
  try {
    copied = await copyGraph(remote, store, manifestDescriptor, {
      rootBytes: result.bytes,
      filter: (d) => copying.has(d.digest),
      concurrency: Math.max(1, options.concurrency ?? 4),
      ...(signal ? { signal } : {}),
      tap: (d) => {
        const layer = unpacked.get(d.digest);
        if (!layer) return undefined;
        const reader = readerFor(layer);
        readers.set(d.digest, reader);
        return (bytes) => reader.write(bytes);
      },
      onProgress: (event) => {
        const { digest, size } = event.descriptor;
        const path = paths.get(digest);
        if (event.type === "start") {
          emit({ type: "layer-start", digest, path, size, fromCache: present.has(digest) });
        } else if (event.type === "progress") {
          loaded.set(digest, event.bytes);
          emit({
            type: "progress",
            digest,
            loaded: event.bytes,
            total: event.total,
            overallLoaded: overall(),
            overallTotal: totalBytes,
          });
        } else {
          fetchedBytes += event.result.fetched;
          emit({ type: "layer-done", digest, path });
        }
      },
    });
  } catch (error) {
    for (const reader of readers.values()) reader.abort(error);
    throw error;
  }
  const fresh = (digest: string) => copied.get(digest)?.existed === false;

  const found = new Map<string, ModelFileInfo[]>();
  /** Compressed layers, dropped once their files are stored. */
  const drop: Descriptor[] = [];
  for (const [digest, layer] of unpacked) {
    const streamed = readers.get(digest);
    try {
      let files: ModelFileInfo[];
      if (streamed && fresh(digest)) files = await streamed.close();
      else {
        // Stored before this pull (or by another tab): read once from the store.
        streamed?.abort();
        files = await readStoredLayer(store, layer, readerFor(layer)).catch(async (error: unknown) => {
          if ((error as OciError).code !== "NOT_FOUND") throw error;
          // Another pull that had it unpacked and dropped it meanwhile: fetch it again.
          const reader = readerFor(layer);
          await copyBlob(remote, store, layer.descriptor, { ...withSignal, tap: (b) => reader.write(b) });
          copied.set(digest, { existed: false, resumedFrom: 0, fetched: layer.descriptor.size });
          return reader.close();
        });
      }
      await storeEntries(store, layer, files, limits, emit);
      found.set(digest, files);
      if (layer.compression && !options.keepArchives) drop.push(layer.descriptor);
    } catch (error) {
      // Commit nothing of an unsafe layer this pull brought in, nor the manifest that names it.
      if (fresh(digest)) await store.delete(layer.descriptor);
      if (fresh(manifestDescriptor.digest)) await store.delete(manifestDescriptor);
      throw error;
    }
  }
  const files = wanted.flatMap((l) => found.get(l.descriptor.digest) ?? rawFiles.get(l) ?? []);
  refuseDuplicates(files, action);
  // A config.json from an archive is known only now: still refused before the record is written.
  checkConfigSizes(manifest.config, configJsonFile(files), action);

  // Before the record: a crash in between leaves no layer that nothing would ever remove. One this
  // pull found stored (an earlier, cut pull's) goes too, unless a model pulled with keepArchives keeps it.
  for (const layer of drop)
    if (fresh(layer.digest) || !(await keptByRecord(store, layer.digest))) await store.delete(layer);

  const record: ModelRecord = {
    reference: ref.toString(),
    digest: result.digest,
    mediaType: result.mediaType,
    format,
    config: manifest.config,
    files,
    pending: planned.filter((l) => !wanted.includes(l)).map((l) => l.descriptor),
    pulledAt: new Date().toISOString(),
    ...(options.keepArchives ? { keptArchives: true } : {}),
  };
  await writeRecord(store, ref, record, manifestDescriptor, createHasher);
  emit({ type: "done", fetchedBytes, reusedBytes: storedBytes, seconds: (Date.now() - started) / 1000 });
  return modelFromRecord(store, record);
}

/**
 * Pulls a model into a store — manifest, config, weights in layer order, config archives extracted
 * safely — every byte verified, interrupted downloads resumed, shared layers stored once.
 * A model already stored is revalidated with one `HEAD` (by tag) or not at all (by digest), and
 * opened from the store when the registry cannot be reached.
 *
 * Concurrent pulls of one model into one store (the same Store object, or no `store` at all) share one download
 * when their options are equal (plain values compared by value; `fetch`, `client`, a credentials
 * function and the like only when they are the same object); a caller whose options differ gets a
 * pull of its own, never one that runs with another caller's credentials, proxy or fetch. `signal`
 * and `onProgress` stay each caller's own: an aborted caller is detached at once (its promise
 * rejects with `ABORTED` or `TIMEOUT`) and the download stops only when every caller sharing it has
 * aborted.
 *
 * @param reference `[registry/]repository[:tag][@digest]`, or a parsed `Reference`.
 * @param options Where to store it, how to reach the registry, progress and abort.
 * @returns The pulled model, read from the store.
 *
 * @example
 * ```ts
 * const model = await pullModel("ai/smollm2:360M", { onProgress: (e) => console.log(e.type) });
 * const config = await model.file("config.json").json();
 * for (const path of model.weights) console.log(path, model.files.get(path)?.size);
 * ```
 */
export function pullModel(reference: string | Reference, options: PullModelOptions = {}): Promise<Model> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const action = `pull ${ref}`;
  if (options.signal?.aborted) return Promise.reject(abortError(action, options.signal.reason));
  const key = `${ref}|${options.weights ?? true}`;
  const storeKey = options.store ?? DEFAULT_STORE;
  const byKey = inFlight.get(storeKey) ?? new Map<string, Job[]>();
  inFlight.set(storeKey, byKey);
  const jobs = byKey.get(key) ?? [];
  byKey.set(key, jobs);
  const running = jobs.find((job) => sameOptions(job.options, options));
  if (running) return join(running, jobs, options, action);
  const listeners = new Set<(event: PullEvent) => void>();
  const emit = (event: PullEvent) => {
    for (const listener of listeners) listener(event);
  };
  const controller = options.signal ? new AbortController() : undefined;
  const done = () => {
    const at = jobs.indexOf(job);
    if (at >= 0) jobs.splice(at, 1);
    if (jobs.length === 0 && byKey.get(key) === jobs) byKey.delete(key);
  };
  const job: Job = {
    promise: pull(
      ref,
      options.store ?? createDefaultStore(),
      { ...options, signal: controller?.signal },
      emit,
    ).finally(done),
    options,
    listeners,
    callers: 0,
    controller,
  };
  jobs.push(job);
  return join(job, jobs, options, action);
}

/**
 * Opens a model already in the store, without any network request. `NOT_FOUND` when it was never pulled.
 *
 * @param reference The reference it was pulled under.
 * @param options The store to look in (default `createDefaultStore()`).
 * @returns The model, read from the store.
 */
export async function openModel(
  reference: string | Reference,
  options: { store?: Store } = {},
): Promise<Model> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const store = options.store ?? createDefaultStore();
  const record = await findRecord(store, ref);
  if (!record) throw new OciError("NOT_FOUND", `Cannot open ${ref}: it is not in the store; pull it first`);
  return modelFromRecord(store, record);
}
