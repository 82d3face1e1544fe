import type { CreateHasher } from "../digest/hasher.js";
import type { Descriptor } from "../oci/manifest.js";

/** What a store needs to know of a blob: its digest and size (a full descriptor also fits). */
export type BlobRef = Pick<Descriptor, "digest" | "size"> & Partial<Pick<Descriptor, "mediaType">>;

/** Bytes `[start, end)` of a blob. */
export type Span = readonly [start: number, end: number];

/** Bytes of a blob at their offset. */
export interface BlobPiece {
  offset: number;
  bytes: Uint8Array;
}

/**
 * A source that can also fetch several spans of a blob at once (a registry that serves ranges):
 * their pieces come at their offsets, in the order they arrive. A store that can write at any
 * offset (`StoreBackend.ingestWriteAt`) asks it for the spans it lacks, and a resumed push fetches
 * only those; any other store reads it in order with `from`.
 */
export interface SpanSource {
  /** The blob's bytes from `offset`, in order. */
  from(offset: number): Promise<ReadableStream<Uint8Array>>;
  /** The bytes of `spans` (sorted, apart, inside the blob) as pieces, in the order they arrive. */
  spans(spans: readonly Span[]): Promise<ReadableStream<BlobPiece>>;
}

/**
 * Where a push gets its bytes: a stream from the start, a function asked for the bytes from an
 * offset (so that a resumed push fetches only the rest, e.g. with HTTP `Range`), or a `SpanSource`.
 */
export type BlobSource =
  | ReadableStream<Uint8Array>
  | ((offset: number) => Promise<ReadableStream<Uint8Array>>)
  | SpanSource;

/** Options of `ReadOnlyStore.fetch`: a byte range, and an abort signal. */
export interface FetchOptions {
  /** First byte to read. Default 0. */
  offset?: number;
  /** How many bytes to read. Default: to the end. */
  length?: number;
  /** Aborts the read. */
  signal?: AbortSignal;
}

/** Options of `WritableStore.push`. */
export interface PushOptions {
  /** Aborts the push; a local store keeps the bytes that arrived, and the next push of the blob resumes there. */
  signal?: AbortSignal;
  /** Called with the bytes held so far (resumed bytes included) as they are written. */
  onProgress?: (bytes: number, total: number) => void;
  /**
   * Receives the blob's bytes in order from its first, as they are hashed — a resumed push's stored
   * prefix first, read back — so that a reader (an archive walker) sees them without reading the
   * blob again. It runs before the digest is checked: what it builds must wait for the push to
   * succeed. The bytes are lent until its promise settles. Throwing stops the tap, not the push:
   * when the blob's digest then matches, the push fails with the tap's error and keeps nothing of
   * the blob; when it does not, with `DIGEST_MISMATCH` (the tap was fed bytes that were not the
   * blob's). Local stores only: a registry (`createRemoteStore`) refuses it. Not called when the
   * store already has the blob (`existed`).
   */
  tap?: (bytes: Uint8Array) => void | Promise<void>;
}

/** What a push did: found the blob, resumed, or read it from the source. */
export interface PushResult {
  /** True when the store already had the blob: nothing was read from the source. */
  existed: boolean;
  /** Bytes already in the ingest area from an earlier, interrupted push. */
  resumedFrom: number;
  /** Bytes read from the source by this push. */
  fetched: number;
  /** A registry linked the blob from another repository instead (`createRemoteStore`'s `mountFrom`). */
  mounted?: boolean;
}

/** What a store holds, as `Store.usage` tells it. */
export interface StoreUsage {
  /** Bytes of committed blobs. */
  bytes: number;
  /** How many committed blobs. */
  blobs: number;
  /** Bytes waiting in the ingest area (interrupted downloads). */
  ingestBytes: number;
  /** The runtime's quota, when it tells (`navigator.storage.estimate()`, free disk space). */
  quota?: { usage: number; quota: number };
}

/** What `Store.gc` removed. */
export interface GcResult {
  /** Digests of the blobs removed (no name reached them). */
  removedBlobs: string[];
  /** Digests of the interrupted pushes discarded (untouched for longer than `ingestMaxAgeMs`). */
  removedIngests: string[];
  /** Bytes freed, blobs and ingests together. */
  freedBytes: number;
}

/** Options of `Store.verify`. */
export interface VerifyOptions {
  /** Stops the check; what was removed so far stays removed. */
  signal?: AbortSignal;
  /** Called after each blob with the bytes checked so far and the bytes of all blobs. */
  onProgress?: (bytes: number, total: number) => void;
}

/** What `Store.verify` found. */
export interface VerifyResult {
  /** Blobs re-hashed. */
  checked: number;
  /** Bytes re-hashed. */
  bytes: number;
  /** Blobs whose bytes no longer hash to their name (or could not be read back), now removed. */
  removed: { digest: string; reason: string }[];
}

/** The read side: local stores and the remote registry repository. */
export interface ReadOnlyStore {
  /** Whether the store has the blob (committed, for a local store). */
  exists(blob: Pick<BlobRef, "digest" | "mediaType">): Promise<boolean>;
  /** The blob's bytes (a committed, verified blob), or a range of them. `NOT_FOUND` when absent. */
  fetch(blob: BlobRef, options?: FetchOptions): Promise<ReadableStream<Uint8Array>>;
  /**
   * Several spans of a blob at once, as pieces in the order they arrive (a registry that serves
   * ranges fetches them side by side). Optional: `copyBlob` uses it where it is.
   */
  fetchSpans?(
    blob: BlobRef,
    spans: readonly Span[],
    options?: Pick<FetchOptions, "signal">,
  ): Promise<ReadableStream<BlobPiece>>;
  /** The descriptor a name (tag) points at, or undefined. */
  resolve(name: string): Promise<Descriptor | undefined>;
}

/** What a graph copy writes to: a local store, or a registry repository (`createRemoteStore`). */
export interface WritableStore extends ReadOnlyStore {
  /**
   * Stores a blob, verifying size and digest while writing; commits only on a match. Idempotent:
   * a blob already present is not read again. Concurrent pushes of one digest (calls, tabs) read it once.
   */
  push(blob: BlobRef, source: BlobSource, options?: PushOptions): Promise<PushResult>;
  /** Points a name at a descriptor (replacing what it pointed at). */
  tag(name: string, descriptor: Descriptor): Promise<void>;
}

/**
 * A content-addressed store of blobs, in the shape of oras-go's: a blob becomes visible only after
 * its size and digest matched; interrupted pushes resume; names point at descriptors.
 */
export interface Store extends WritableStore {
  /**
   * A committed blob, or a range of it, as a `Blob`: over the stored files themselves where the
   * medium allows (OPFS: nothing passes through the JS heap), else read into the browser's blob
   * storage. For runtimes that take a `Blob` or an object URL. The `Blob` reads the stored bytes
   * when read: removing the blob meanwhile makes reading it fail. `NOT_FOUND` when absent.
   */
  blob(blob: BlobRef, options?: Pick<FetchOptions, "offset" | "length">): Promise<Blob>;
  /** Removes a blob (tags that point at it stay; see `gc`). */
  delete(blob: Pick<BlobRef, "digest">): Promise<void>;
  /** Removes a name (the blobs it reached stay until `gc`). */
  untag(name: string): Promise<void>;
  /** Every name and the descriptor it points at. */
  tags(): Promise<Map<string, Descriptor>>;
  /** Every committed blob. */
  list(): Promise<{ digest: string; size: number }[]>;
  /** Bytes and blobs held, bytes of interrupted pushes, and the runtime's quota. */
  usage(): Promise<StoreUsage>;
  /**
   * Removes blobs that no name reaches (through manifests and indexes) and stale ingests. Blobs and
   * ingests that a push in progress holds are kept.
   *
   * @param options `ingestMaxAgeMs`: interrupted pushes untouched this long are discarded (default 1 hour).
   */
  gc(options?: { ingestMaxAgeMs?: number }): Promise<GcResult>;
  /**
   * Re-hashes every committed blob and removes (and reports) any whose bytes no longer match its
   * name: damage done after the commit (a crash before the data reached the disk, a failing disk,
   * a hand edit). A pull fetches what was removed again.
   */
  verify(options?: VerifyOptions): Promise<VerifyResult>;
}

/** Options every store takes. */
export interface StoreOptions {
  /** Hash implementation; a hasher with `save`/`load` lets a resume skip re-reading the prefix. */
  createHasher?: CreateHasher;
  /**
   * Bytes per write (every chunk but a blob's last is exactly this long). Default 8 MiB; 512 KiB for
   * the fs store.
   */
  chunkSize?: number;
  /**
   * How far apart resume points (offset + hasher state) are recorded. A cut connection or an abort
   * keeps everything that arrived; a crash or page reload refetches at most this much. Default
   * 16 MiB (and never less than `chunkSize`).
   */
  checkpointBytes?: number;
  /** Space left for this store; default from `navigator.storage.estimate()` where it exists. */
  estimate?: () => Promise<{ usage: number; quota: number } | undefined>;
}
