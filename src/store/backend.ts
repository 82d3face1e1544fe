import type { Descriptor } from "../oci/manifest.js";
import type { Span } from "./types.js";

/** An interrupted push: how far it got and, when the hasher could save it, its state there. */
export interface IngestState {
  /** Bytes durable in the ingest area. */
  offset: number;
  /** The hasher's `save()` after those bytes; absent when the hasher cannot save (the prefix is re-hashed). */
  hasherState?: Uint8Array;
  /** ms since the epoch of the last checkpoint. */
  updatedAt: number;
  /**
   * Spans past `offset` written whole and durable, not hashed yet: ranges that came ahead of the
   * prefix (`ingestWriteAt`). Sorted and apart. A backend reports only those it really holds.
   */
  spans?: Span[];
}

/**
 * What a storage medium provides; `createStore` turns it into a verified, resumable `Store`.
 * Backends never decide what is valid: they write where they are told and commit when asked.
 */
export interface StoreBackend {
  /** Committed blobs. */
  has(digest: string): Promise<boolean>;
  /** `length` bytes of a committed blob from `offset` (the engine checks the range first). */
  read(digest: string, offset: number, length: number): Promise<ReadableStream<Uint8Array>>;
  /**
   * `length` bytes of a committed blob from `offset` as a `Blob` the medium keeps (OPFS files), so
   * that nothing is copied through the JS heap. Optional: the engine falls back to `read`.
   */
  blob?(digest: string, offset: number, length: number): Promise<Blob>;
  /** Deletes a committed blob; absent is not an error. */
  remove(digest: string): Promise<void>;
  /** Every committed blob, with its size. */
  blobs(): Promise<{ digest: string; size: number }[]>;

  /** The ingest area: never visible as a blob. */
  ingestState(digest: string): Promise<IngestState | undefined>;
  /**
   * Writes `bytes` at `offset` of the ingest (anything after `offset` is dropped first). The backend
   * owns `bytes` from here on (it may transfer them to a worker); once it no longer needs them it
   * may hand them to `recycle`, and the engine fills them again.
   */
  ingestWrite(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ): Promise<void>;
  /**
   * Writes `bytes` at `offset` of the ingest, keeping every byte outside them: ranges fetched side
   * by side land where they belong, in any order. Ownership of `bytes` as `ingestWrite`'s. Optional:
   * a backend without it is written in order.
   */
  ingestWriteAt?(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ): Promise<void>;
  /**
   * Records that the first `state.offset` bytes, and `state.spans`, are durable, with the hasher
   * state after the first `state.offset`.
   */
  ingestCheckpoint(digest: string, state: IngestState): Promise<void>;
  /** Bytes of an ingest, to re-hash a prefix when no hasher state was saved. */
  ingestRead(digest: string, offset: number, length: number): Promise<ReadableStream<Uint8Array>>;
  /** Makes the ingest of `size` bytes the committed blob, atomically. */
  ingestCommit(digest: string, size: number): Promise<void>;
  /** Deletes an ingest and its state (gc, or a push whose bytes did not match). */
  ingestDiscard(digest: string): Promise<void>;
  /** The push of `digest` is over for now (it failed or was aborted): let go of open resources. */
  ingestRelease?(digest: string): Promise<void>;
  /**
   * Waits for the writes of `digest` the backend queued (a backend that writes in a worker), having
   * given back what they were given, and throws if one failed; the ingest stays open for more.
   * Optional: without it the bytes of a write still queued are read back.
   */
  ingestWritten?(digest: string): Promise<void>;
  /** Every ingest with its state (for `gc` and `usage`). */
  ingests(): Promise<{ digest: string; state: IngestState }[]>;

  /**
   * Takes the lock `name` (a digest, or `tags`) beyond this realm, for media that other processes
   * share (a folder on disk), waiting while another holds it; returns its release. The engine takes
   * it inside its own lock (which covers calls, tabs and workers) around every push, delete and tag
   * change.
   */
  acquire?(name: string, signal?: AbortSignal): Promise<() => Promise<void>>;
  /** Whether another process holds the lock `name` now (gc leaves what it guards alone). */
  isLocked?(name: string): Promise<boolean>;

  /** Names: read and replaced whole (the store serialises writers). */
  readTags(): Promise<Map<string, Descriptor>>;
  /** Replaces every name with `tags`. */
  writeTags(tags: Map<string, Descriptor>): Promise<void>;

  /** Space left for this medium, when it can tell. */
  estimate?(): Promise<{ usage: number; quota: number } | undefined>;
}
