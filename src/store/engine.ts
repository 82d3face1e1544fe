import { type CreateHasher, type Hasher, parseDigest } from "../digest/hasher.js";
import { createDefaultHasher } from "../digest/hashers.js";
import { asOciError, OciError, throwIfAborted } from "../errors.js";
import { type Descriptor, MANIFEST_SIZE_LIMIT, parseManifest } from "../oci/manifest.js";
import { ByteRangeStream, readAll } from "../streams.js";
import type { IngestState, StoreBackend } from "./backend.js";
import { Chunker } from "./chunker.js";
import { isManifestDescriptor, successors } from "./graph.js";
import { guardBackend } from "./guard.js";
import { ingestSpans } from "./ingest-spans.js";
import { isLocked, withLock } from "./lock.js";
import { isSpanSource, type OrderedSource, orderedSource } from "./source.js";
import { validSpans } from "./spans.js";
import type {
  BlobRef,
  BlobSource,
  FetchOptions,
  GcResult,
  PushOptions,
  PushResult,
  Span,
  Store,
  StoreOptions,
  VerifyOptions,
  VerifyResult,
} from "./types.js";

const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** Checkpoints (offset + hasher state) this far apart by default; data is written every chunk. */
const CHECKPOINT_BYTES = 16 * 1024 * 1024;
const DEFAULT_INGEST_MAX_AGE = 60 * 60 * 1000;

type Estimate = () => Promise<{ usage: number; quota: number } | undefined>;

const navigatorEstimate: Estimate = async () => {
  const storage = (globalThis as { navigator?: { storage?: { estimate?: () => Promise<StorageEstimate> } } })
    .navigator?.storage;
  if (typeof storage?.estimate !== "function") return undefined;
  const { usage, quota } = await storage.estimate();
  return usage === undefined || quota === undefined ? undefined : { usage, quota };
};

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The hasher broke (WASM out of memory, no `crypto.DigestStream`…): a local failure, not the network's. */
function hasherError(error: unknown, action: string): OciError {
  if (error instanceof OciError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new OciError("STORAGE", `Cannot ${action}: the hasher failed (${detail})`, { cause: error });
}

/** Bytes an interrupted push holds: its prefix and the spans past it. */
function heldBy(state: IngestState): number {
  const spans = validSpans(state.spans, state.offset, Number.MAX_SAFE_INTEGER);
  return spans.reduce((n, [start, end]) => n + end - start, state.offset);
}

function checkBlob(blob: BlobRef, action: string): void {
  parseDigest(blob.digest);
  if (!Number.isSafeInteger(blob.size) || blob.size < 0) {
    throw new OciError("INVALID_ARGUMENT", `Cannot ${action}: size ${blob.size} is not a byte count`);
  }
}

/**
 * Makes a verified, resumable `Store` of a storage backend: bytes go to the ingest area with
 * checkpoints (offset and hasher state), are hashed as they arrive, and are committed only when size
 * and digest matched. An interrupted push is resumed by the next push of the same digest.
 *
 * @param medium The storage backend, with an `id` that names it in lock names (two stores on the
 *   same medium must share it, so that their pushes and gc exclude each other).
 * @param options Hasher, chunk size, checkpoint spacing, quota estimate.
 * @returns The store.
 * @throws {OciError} `INVALID_ARGUMENT` for a `chunkSize` or `checkpointBytes` that is not a positive integer.
 */
export function createStore(
  medium: StoreBackend & { readonly id: string },
  options: StoreOptions = {},
): Store {
  const backend = guardBackend(medium);
  const createHasher: CreateHasher = options.createHasher ?? createDefaultHasher;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  const checkpointBytes = Math.max(chunkSize, options.checkpointBytes ?? CHECKPOINT_BYTES);
  for (const [name, value] of [
    ["chunkSize", chunkSize],
    ["checkpointBytes", checkpointBytes],
  ] as const) {
    if (!(Number.isSafeInteger(value) && value > 0)) {
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot create a store: ${name} ${value} is not a positive byte count`,
      );
    }
  }
  const estimate: Estimate = options.estimate ?? backend.estimate?.bind(backend) ?? navigatorEstimate;
  const lockName = (name: string) => `oci-model-loader:${backend.id}:${name}`;
  /** Runs `fn` holding the lock `name` (a digest, or `tags`): in this realm, across tabs, across processes. */
  const exclusive = <T>(name: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> =>
    withLock(lockName(name), async () => {
      const release = await backend.acquire?.(name, signal);
      try {
        return await fn();
      } finally {
        await release?.();
      }
    });
  const isHeld = async (name: string) =>
    (await isLocked(lockName(name))) || (await backend.isLocked?.(name)) === true;

  async function exists(blob: Pick<BlobRef, "digest">): Promise<boolean> {
    return backend.has(blob.digest);
  }

  /** The range a read asks for, checked against the blob; `NOT_FOUND` when the blob is not stored. */
  async function readRange(blob: BlobRef, fetchOptions: FetchOptions) {
    const offset = fetchOptions.offset ?? 0;
    const length = fetchOptions.length ?? blob.size - offset;
    const action = `read ${blob.digest} from the store`;
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > blob.size
    ) {
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot ${action}: bytes ${offset}+${length} are outside its ${blob.size}`,
      );
    }
    throwIfAborted(fetchOptions.signal, action);
    if (!(await backend.has(blob.digest)))
      throw new OciError("NOT_FOUND", `Cannot ${action}: it is not stored`);
    return { offset, length };
  }

  async function fetchBlob(
    blob: BlobRef,
    fetchOptions: FetchOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const { offset, length } = await readRange(blob, fetchOptions);
    return backend.read(blob.digest, offset, length);
  }

  async function blobOf(blob: BlobRef, options: FetchOptions = {}): Promise<Blob> {
    const { offset, length } = await readRange(blob, options);
    if (backend.blob) return backend.blob(blob.digest, offset, length);
    return new Response(await backend.read(blob.digest, offset, length)).blob();
  }

  async function newHasher(blob: BlobRef) {
    try {
      return await createHasher(parseDigest(blob.digest).algorithm);
    } catch (error) {
      throw hasherError(error, `store ${blob.digest}`);
    }
  }

  async function resumeHasher(blob: BlobRef) {
    const hasher = await newHasher(blob);
    const state = await backend.ingestState(blob.digest);
    if (!state) return { hasher, offset: 0, spans: [] };
    const spans = validSpans(state.spans, state.offset, blob.size);
    if (state.offset > blob.size || spans.length !== (state.spans ?? []).length) {
      // Not this blob's (or not a record the engine wrote): start over.
      await backend.ingestDiscard(blob.digest);
      return { hasher, offset: 0, spans: [] };
    }
    if (state.offset === 0) return { hasher, offset: 0, spans };
    if (state.hasherState && hasher.load) {
      try {
        hasher.load(state.hasherState);
        return { hasher, offset: state.offset, spans };
      } catch {
        // a state from another hasher: re-hash the prefix instead
      }
    }
    const fresh = await newHasher(blob);
    for await (const chunk of await backend.ingestRead(blob.digest, 0, state.offset)) {
      try {
        await fresh.update(chunk);
      } catch (error) {
        throw hasherError(error, `store ${blob.digest}`);
      }
    }
    return { hasher: fresh, offset: state.offset, spans };
  }

  async function checkQuota(needed: number, action: string): Promise<void> {
    const space = await estimate().catch(() => undefined);
    if (!space) return;
    const free = space.quota - space.usage;
    if (needed > free) {
      throw new OciError(
        "QUOTA_EXCEEDED",
        `Cannot ${action}: it needs ${mib(needed)} more but only ${mib(free)} of the ${mib(space.quota)} quota is free; delete models or ask for persistent storage`,
      );
    }
  }

  /** Reads an ordered source from `offset` and writes it in chunks, hashing as it goes; resolves with the bytes read. */
  async function ingestInOrder(
    blob: BlobRef,
    source: OrderedSource,
    pushOptions: PushOptions,
    resumed: {
      hasher: Hasher;
      offset: number;
      tap: ((bytes: Uint8Array) => Promise<void>) | undefined;
      spans: readonly Span[];
    },
  ): Promise<number> {
    const { signal, onProgress } = pushOptions;
    const { hasher, offset, tap } = resumed;
    const action = `store ${blob.digest}`;
    if (resumed.spans.length > 0) {
      // Written in order from `offset`, the spans past it go: the record must not outlive them.
      const hasherState = hasher.save?.();
      await backend.ingestCheckpoint(blob.digest, {
        offset,
        updatedAt: Date.now(),
        ...(hasherState ? { hasherState } : {}),
      });
    }
    onProgress?.(offset, blob.size);
    let stream: ReadableStream<Uint8Array>;
    try {
      stream =
        typeof source === "function" ? await source(offset) : source.pipeThrough(new ByteRangeStream(offset)); // a resumed push given a stream from the start
    } catch (error) {
      throw asOciError(error, action);
    }
    const reader = stream.getReader();
    const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
    // Removed when the push ends: a signal may outlive many pushes (one for a whole pull).
    signal?.addEventListener("abort", onAbort);

    const chunks = new Chunker(chunkSize);
    let written = offset;
    let seen = offset;
    let fetched = 0;
    // Chunks are hashed as they are cut, then written, one write in flight while the next chunk is
    // read; a checkpoint (offset + hasher state, taken when the chunk was hashed) every
    // `checkpointBytes` and at the end.
    let inFlight: Promise<void> = Promise.resolve();
    let checkpointed = offset;
    const flush = async (final = false) => {
      // The backend owns what it is given (it may transfer it): never the source's own chunk.
      const bytes = chunks.cut(final);
      try {
        await hasher.update(bytes);
        await tap?.(bytes);
      } catch (error) {
        // The hasher is past bytes that will never be written: nothing more may be recorded.
        const failure = hasherError(error, action);
        inFlight = Promise.reject(failure);
        inFlight.catch(() => {});
        throw failure;
      }
      await inFlight;
      const at = written;
      written += bytes.byteLength;
      const due = final || written - checkpointed >= checkpointBytes;
      const state = due
        ? { offset: written, updatedAt: Date.now(), ...(hasher.save ? { hasherState: hasher.save() } : {}) }
        : undefined;
      inFlight = (async () => {
        // An empty blob still gets its (empty) ingest, for the backend to commit.
        if (bytes.byteLength > 0 || blob.size === 0)
          await backend.ingestWrite(blob.digest, at, bytes, chunks.recycle);
        if (state && state.offset > checkpointed) {
          await backend.ingestCheckpoint(blob.digest, state);
          checkpointed = state.offset;
        }
      })();
      // Awaited by the next flush; until then a failure must not count as unhandled (Node exits).
      inFlight.catch(() => {});
      if (final) await inFlight;
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        fetched += value.byteLength;
        if (seen + value.byteLength > blob.size) {
          // The last write and checkpoint land first: a checkpoint recorded after the discard
          // would outlive the bytes it covers, and the next push would resume from it.
          await inFlight.catch(() => {});
          await backend.ingestDiscard(blob.digest);
          throw new OciError(
            "SIZE_MISMATCH",
            `Cannot ${action}: the source sent more than the declared ${blob.size} bytes`,
          );
        }
        seen += value.byteLength;
        chunks.add(value);
        while (chunks.full) await flush();
        onProgress?.(seen, blob.size);
      }
      throwIfAborted(signal, action);
    } catch (error) {
      reader.cancel().catch(() => {});
      // Backend and hasher failures are OciErrors already: anything else came from the source.
      const failure = asOciError(error, action);
      // Keep what arrived (cut, hashed and written in order) so the next push resumes from there;
      // after a failed write or hasher (QUOTA_EXCEEDED, STORAGE) `inFlight` holds that failure and
      // the flush writes nothing more. Not when the source's size was wrong: wait for what is
      // running, and add nothing.
      if (failure.code !== "SIZE_MISMATCH") await flush(true).catch(() => {});
      else await inFlight.catch(() => {});
      throw failure;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    await flush(true);
    if (seen < blob.size) {
      throw new OciError(
        "SIZE_MISMATCH",
        `Cannot ${action}: the source ended after ${seen} of ${blob.size} bytes; pushing again resumes from there`,
      );
    }
    return fetched;
  }

  async function ingest(blob: BlobRef, source: BlobSource, pushOptions: PushOptions): Promise<PushResult> {
    const { signal, onProgress } = pushOptions;
    const action = `store ${blob.digest}`;
    const { hasher, offset, spans } = await resumeHasher(blob);
    // A tap that throws (a hostile archive, or bytes that are not the blob's) is not fed again; the
    // push goes on, and its digest tells which: a match fails it with the tap's error.
    let tapError: { error: unknown } | undefined;
    const given = pushOptions.tap;
    const tap =
      given &&
      (async (bytes: Uint8Array) => {
        if (tapError) return;
        try {
          await given(bytes);
        } catch (error) {
          tapError = { error };
        }
      });
    if (tap && offset)
      // a resumed push: the stored prefix first
      for await (const chunk of await backend.ingestRead(blob.digest, 0, offset)) await tap(chunk);
    // An empty blob has no range to fetch: it is written in order (an empty ingest, to commit).
    const inSpans = isSpanSource(source) && backend.ingestWriteAt !== undefined && blob.size > 0;
    // Written in order, the spans past the prefix are fetched again.
    const stored = inSpans ? spans.reduce((n, [start, end]) => n + end - start, offset) : offset;
    await checkQuota(blob.size - stored, action);
    throwIfAborted(signal, action);
    const fetched = inSpans
      ? await ingestSpans({
          backend: backend as StoreBackend & Required<Pick<StoreBackend, "ingestWriteAt">>,
          digest: blob.digest,
          size: blob.size,
          source,
          offset,
          spans,
          hash: async (bytes) => {
            try {
              await hasher.update(bytes);
            } catch (error) {
              throw hasherError(error, action);
            }
            await tap?.(bytes);
          },
          save: () => hasher.save?.(),
          chunkSize,
          checkpointBytes,
          signal,
          onProgress,
          action,
        }).then(
          (done) => done.fetched,
          (error: unknown) => {
            throw asOciError(error, action);
          },
        )
      : await ingestInOrder(blob, orderedSource(source), pushOptions, { hasher, offset, tap, spans });
    let actual: string;
    try {
      actual = `${parseDigest(blob.digest).algorithm}:${await hasher.digest()}`;
    } catch (error) {
      throw hasherError(error, action);
    }
    if (actual !== blob.digest) {
      await backend.ingestDiscard(blob.digest);
      throw new OciError(
        "DIGEST_MISMATCH",
        `Cannot ${action}: the content hashes to ${actual}; nothing was stored`,
      );
    }
    if (tapError) {
      await backend.ingestDiscard(blob.digest);
      throw asOciError(tapError.error, action);
    }
    await backend.ingestCommit(blob.digest, blob.size);
    return { existed: false, resumedFrom: stored, fetched };
  }

  async function ingestAndRelease(
    blob: BlobRef,
    source: BlobSource,
    pushOptions: PushOptions,
  ): Promise<PushResult> {
    try {
      return await ingest(blob, source, pushOptions);
    } finally {
      await backend.ingestRelease?.(blob.digest).catch(() => {});
    }
  }

  async function push(blob: BlobRef, source: BlobSource, pushOptions: PushOptions = {}): Promise<PushResult> {
    checkBlob(blob, `store ${blob.digest}`);
    return exclusive(
      blob.digest,
      async () => {
        if (await backend.has(blob.digest)) {
          if (source instanceof ReadableStream) await source.cancel().catch(() => {});
          pushOptions.onProgress?.(blob.size, blob.size);
          return { existed: true, resumedFrom: 0, fetched: 0 };
        }
        return ingestAndRelease(blob, source, pushOptions);
      },
      pushOptions.signal,
    );
  }

  /** What gc keeps alive below a descriptor: its successors, and a referrer's subject. */
  async function children(descriptor: Descriptor): Promise<Descriptor[]> {
    if (!isManifestDescriptor(descriptor)) return [];
    if (descriptor.size > MANIFEST_SIZE_LIMIT || !(await backend.has(descriptor.digest))) return [];
    const bytes = await readAll(await backend.read(descriptor.digest, 0, descriptor.size));
    try {
      const manifest = parseManifest(bytes, descriptor.mediaType);
      return manifest.subject ? [...successors(manifest), manifest.subject] : successors(manifest);
    } catch {
      return [];
    }
  }

  async function gc(gcOptions: { ingestMaxAgeMs?: number } = {}): Promise<GcResult> {
    const reachable = new Set<string>();
    const pending = [...(await backend.readTags()).values()];
    while (pending.length > 0) {
      const descriptor = pending.pop() as Descriptor;
      if (reachable.has(descriptor.digest)) continue;
      reachable.add(descriptor.digest);
      pending.push(...(await children(descriptor)));
    }
    const result: GcResult = { removedBlobs: [], removedIngests: [], freedBytes: 0 };
    for (const { digest, size } of await backend.blobs()) {
      if (reachable.has(digest) || (await isHeld(digest))) continue;
      await backend.remove(digest);
      result.removedBlobs.push(digest);
      result.freedBytes += size;
    }
    const cutoff = Date.now() - (gcOptions.ingestMaxAgeMs ?? DEFAULT_INGEST_MAX_AGE);
    for (const { digest, state } of await backend.ingests()) {
      if (state.updatedAt > cutoff || (await isHeld(digest))) continue;
      await backend.ingestDiscard(digest);
      result.removedIngests.push(digest);
      result.freedBytes += heldBy(state);
    }
    return result;
  }

  async function verify(verifyOptions: VerifyOptions = {}): Promise<VerifyResult> {
    const { signal, onProgress } = verifyOptions;
    const blobs = await backend.blobs();
    const total = blobs.reduce((n, b) => n + b.size, 0);
    const result: VerifyResult = { checked: 0, bytes: 0, removed: [] };
    for (const blob of blobs) {
      throwIfAborted(signal, "verify the store");
      await exclusive(
        blob.digest,
        async () => {
          if (!(await backend.has(blob.digest))) return; // removed meanwhile
          const reason = await damage(blob, signal);
          if (reason === undefined) return;
          await backend.remove(blob.digest);
          result.removed.push({ digest: blob.digest, reason });
        },
        signal,
      );
      result.checked++;
      result.bytes += blob.size;
      onProgress?.(result.bytes, total);
    }
    return result;
  }

  /** Why a committed blob is not what its name says, or undefined when it is. */
  async function damage(blob: BlobRef, signal: AbortSignal | undefined): Promise<string | undefined> {
    const hasher = await newHasher(blob);
    try {
      for await (const chunk of await backend.read(blob.digest, 0, blob.size)) {
        throwIfAborted(signal, "verify the store");
        await hasher.update(chunk);
      }
    } catch (error) {
      if (error instanceof OciError && error.code === "STORAGE") return error.message;
      throw error;
    }
    const actual = `${parseDigest(blob.digest).algorithm}:${await hasher.digest()}`;
    return actual === blob.digest ? undefined : `its bytes hash to ${actual}`;
  }

  const updateTags = (change: (tags: Map<string, Descriptor>) => void) =>
    exclusive("tags", async () => {
      const tags = await backend.readTags();
      change(tags);
      await backend.writeTags(tags);
    });

  return {
    exists,
    fetch: fetchBlob,
    blob: blobOf,
    push,
    delete: async (blob) => exclusive(blob.digest, () => backend.remove(blob.digest)),
    resolve: async (name) => (await backend.readTags()).get(name),
    tag: (name, descriptor) => {
      if (name === "") throw new OciError("INVALID_ARGUMENT", "Cannot tag: the name is empty");
      return updateTags((tags) => tags.set(name, descriptor));
    },
    untag: (name) => updateTags((tags) => tags.delete(name)),
    tags: () => backend.readTags(),
    list: () => backend.blobs(),
    usage: async () => {
      const blobs = await backend.blobs();
      const ingests = await backend.ingests();
      const quota = await estimate().catch(() => undefined);
      return {
        bytes: blobs.reduce((n, b) => n + b.size, 0),
        blobs: blobs.length,
        ingestBytes: ingests.reduce((n, i) => n + heldBy(i.state), 0),
        ...(quota ? { quota } : {}),
      };
    },
    gc,
    verify,
  };
}
