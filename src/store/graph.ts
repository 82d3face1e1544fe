/**
 * The manifest graph: what a manifest or index points at, and one copy of a graph between any two
 * stores (a registry repository is one too: `createRemoteStore`). Pull, push and gc all walk it
 * through `successors`.
 */
import { OciError, throwIfAborted } from "../errors.js";
import {
  type Descriptor,
  isIndex,
  MANIFEST_SIZE_LIMIT,
  type Manifest,
  parseManifest,
} from "../oci/manifest.js";
import { isIndexMediaType, isManifestMediaType } from "../oci/media-types.js";
import { readAll } from "../streams.js";
import type { BlobRef, PushOptions, PushResult, ReadOnlyStore, Span, WritableStore } from "./types.js";

/** True for a descriptor of a manifest or an index (its bytes name more descriptors). */
export function isManifestDescriptor(descriptor: Pick<BlobRef, "mediaType">): boolean {
  return isManifestMediaType(descriptor.mediaType) || isIndexMediaType(descriptor.mediaType);
}

/**
 * What a manifest points at: an index's manifests, or a manifest's config and layers, in order. A
 * `subject` is left out: it is the root of another graph, which this one refers to (gc keeps it).
 */
export function successors(manifest: Manifest): Descriptor[] {
  return isIndex(manifest) ? manifest.manifests : [manifest.config, ...manifest.layers];
}

/**
 * Copies one blob between stores, verified once (by the receiving store), resuming an earlier
 * interrupted copy with a ranged read of the rest.
 */
export function copyBlob(
  source: ReadOnlyStore,
  target: WritableStore,
  blob: BlobRef,
  options: PushOptions = {},
): Promise<PushResult> {
  const withSignal = options.signal ? { signal: options.signal } : {};
  const from = (offset: number) => source.fetch(blob, { offset, length: blob.size - offset, ...withSignal });
  // A source that fetches spans side by side: a store that can write them where they belong asks
  // for the spans it lacks.
  const fetchSpans = source.fetchSpans?.bind(source);
  const spans = fetchSpans && ((wanted: readonly Span[]) => fetchSpans(blob, wanted, withSignal));
  return target.push(blob, spans ? { from, spans } : from, options);
}

/** Indexes of indexes of… deeper than this are refused (a source could make them up without end). */
const MAX_DEPTH = 8;

/** What `copyGraph` reports of each blob (manifests are not reported). */
export type CopyEvent =
  | { type: "start"; descriptor: Descriptor }
  | { type: "progress"; descriptor: Descriptor; bytes: number; total: number }
  | { type: "done"; descriptor: Descriptor; result: PushResult };

/** Options of `copyGraph`. */
export interface CopyGraphOptions {
  /** Blobs copied at a time. Default 4. */
  concurrency?: number;
  /**
   * Copy a manifest's config before its layers start (default true): small, and a source that
   * fails on it (a hostile registry) fails before the layers start. A push from a store has no use
   * for the wait, a round trip or three: its layers start at once beside the config.
   */
  configFirst?: boolean;
  /** Which successors to copy (default all); the root is always copied. */
  filter?: (descriptor: Descriptor) => boolean;
  /** The root's bytes, when the caller has them already (verified against its digest). */
  rootBytes?: Uint8Array;
  /** Aborts the copy; what was pushed stays, and the next copy skips or resumes it. */
  signal?: AbortSignal;
  /** Called as each blob starts, makes progress and is done. */
  onProgress?: (event: CopyEvent) => void;
  /** A reader of a blob's bytes as they are stored (`PushOptions.tap`), for the blobs it names. */
  tap?: (descriptor: Descriptor) => PushOptions["tap"];
}

/**
 * Copies the graph under `root` from `source` to `target`: every blob once, `concurrency` at a time
 * (a manifest's config before its layers, unless told otherwise), each verified by the store it goes into and resumed where
 * an earlier copy stopped; each manifest only after everything it points at, so a manifest in
 * `target` always has its successors. Stops at the first failure.
 *
 * @param source Where the graph is read from: a store, or a registry (`createRemoteStore`).
 * @param target Where it is written: a store, or a registry repository.
 * @param root The descriptor of the manifest or index at the top of the graph.
 * @returns What each push did, by digest.
 */
export async function copyGraph(
  source: ReadOnlyStore,
  target: WritableStore,
  root: Descriptor,
  options: CopyGraphOptions = {},
): Promise<Map<string, PushResult>> {
  const { signal, filter, onProgress } = options;
  const action = `copy ${root.digest}`;
  const limit = new Limiter(Math.max(1, options.concurrency ?? 4));
  const copies = new Map<string, Promise<void>>();
  const results = new Map<string, PushResult>();
  const withSignal = signal ? { signal } : {};

  const copyLeaf = async (blob: Descriptor) => {
    await limit.run(async () => {
      throwIfAborted(signal, action);
      onProgress?.({ type: "start", descriptor: blob });
      const tap = options.tap?.(blob);
      const result = await copyBlob(source, target, blob, {
        ...withSignal,
        ...(tap ? { tap } : {}),
        onProgress: (bytes, total) => onProgress?.({ type: "progress", descriptor: blob, bytes, total }),
      });
      results.set(blob.digest, result);
      onProgress?.({ type: "done", descriptor: blob, result });
    });
  };

  const copyManifest = async (descriptor: Descriptor, depth: number) => {
    throwIfAborted(signal, action);
    if (depth > MAX_DEPTH) {
      throw new OciError("MANIFEST_INVALID", `Cannot ${action}: manifests nest more than ${MAX_DEPTH} deep`);
    }
    const bytes =
      descriptor === root && options.rootBytes
        ? options.rootBytes
        : await readManifest(source, descriptor, withSignal);
    const manifest = parseManifest(bytes, descriptor.mediaType, descriptor.digest);
    const below = successors(manifest).filter((d) => !filter || filter(d));
    const first =
      isIndex(manifest) || options.configFirst === false
        ? undefined
        : below.find((d) => d === manifest.config);
    const next = (d: Descriptor) => copy(d, depth + 1);
    if (first) await next(first);
    await Promise.all(below.filter((d) => d !== first).map(next));
    const body = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
    results.set(descriptor.digest, await target.push(descriptor, body, withSignal));
  };

  const copy = (descriptor: Descriptor, depth: number): Promise<void> => {
    let copying = copies.get(descriptor.digest);
    if (!copying) {
      copying = isManifestDescriptor(descriptor) ? copyManifest(descriptor, depth) : copyLeaf(descriptor);
      copies.set(descriptor.digest, copying);
    }
    return copying;
  };

  try {
    await copy(root, 0);
  } finally {
    limit.close();
  }
  return results;
}

async function readManifest(
  source: ReadOnlyStore,
  descriptor: Descriptor,
  options: { signal?: AbortSignal },
): Promise<Uint8Array> {
  if (descriptor.size > MANIFEST_SIZE_LIMIT) {
    throw new OciError(
      "MANIFEST_INVALID",
      `Cannot read manifest ${descriptor.digest}: its ${descriptor.size} bytes are over the ${MANIFEST_SIZE_LIMIT}-byte limit`,
    );
  }
  return readAll(await source.fetch(descriptor, options));
}

/** Runs at most `size` tasks at a time; once closed (a copy failed), queued tasks never start. */
class Limiter {
  #free: number;
  #queue: (() => void)[] = [];
  #closed = false;

  constructor(size: number) {
    this.#free = size;
  }

  async run(task: () => Promise<void>): Promise<void> {
    // A freed slot is handed to the next waiter directly, so a newcomer cannot take it meanwhile.
    if (this.#free > 0) this.#free--;
    else if (!this.#closed) await new Promise<void>((resolve) => this.#queue.push(resolve));
    try {
      if (!this.#closed) await task();
    } catch (error) {
      this.close();
      throw error;
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }

  close(): void {
    this.#closed = true;
    for (const wake of this.#queue.splice(0)) wake();
  }
}
