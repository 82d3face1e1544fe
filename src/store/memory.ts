import type { Descriptor } from "../oci/manifest.js";
import type { IngestState, StoreBackend } from "./backend.js";
import { createStore } from "./engine.js";
import type { Store, StoreOptions } from "./types.js";

let stores = 0;

function streamOf(bytes: Uint8Array, chunk = 1024 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

/** Grows by doubling, so appending chunks costs amortised O(1). */
class Growable {
  bytes = new Uint8Array(0);
  length = 0;
  /** Writes `data` at `offset`, keeping what lies past it. */
  write(offset: number, data: Uint8Array) {
    const end = offset + data.byteLength;
    if (end > this.bytes.byteLength) {
      const next = new Uint8Array(Math.max(end, this.bytes.byteLength * 2));
      next.set(this.bytes.subarray(0, this.length));
      this.bytes = next;
    }
    this.bytes.set(data, offset);
    this.length = Math.max(this.length, end);
  }
  view() {
    return this.bytes.subarray(0, this.length);
  }
}

class MemoryBackend implements StoreBackend {
  readonly id = `memory-${++stores}`;
  readonly #blobs = new Map<string, Uint8Array>();
  readonly #ingests = new Map<string, { data: Growable; state: IngestState }>();
  #tags = new Map<string, Descriptor>();

  async has(digest: string) {
    return this.#blobs.has(digest);
  }
  async read(digest: string, offset: number, length: number) {
    return streamOf((this.#blobs.get(digest) ?? new Uint8Array(0)).subarray(offset, offset + length));
  }
  async remove(digest: string) {
    this.#blobs.delete(digest);
  }
  async blobs() {
    return [...this.#blobs].map(([digest, bytes]) => ({ digest, size: bytes.byteLength }));
  }
  async ingestState(digest: string) {
    return this.#ingests.get(digest)?.state;
  }
  #entry(digest: string) {
    let entry = this.#ingests.get(digest);
    if (!entry) {
      entry = { data: new Growable(), state: { offset: 0, updatedAt: Date.now() } };
      this.#ingests.set(digest, entry);
    }
    return entry;
  }
  async ingestWrite(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    const entry = this.#entry(digest);
    if (offset > entry.data.length)
      throw new Error(`a write at ${offset} would leave a hole after ${entry.data.length}`);
    entry.data.length = offset;
    entry.data.write(offset, bytes); // a copy
    recycle?.(bytes);
  }
  async ingestWriteAt(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    // Bytes between the end and `offset` read as zeros until written: never hashed before then.
    this.#entry(digest).data.write(offset, bytes);
    recycle?.(bytes);
  }
  async ingestCheckpoint(digest: string, state: IngestState) {
    const entry = this.#ingests.get(digest);
    if (entry) entry.state = state;
  }
  async ingestRead(digest: string, offset: number, length: number) {
    return streamOf(
      (this.#ingests.get(digest)?.data.view() ?? new Uint8Array(0)).subarray(offset, offset + length),
    );
  }
  async ingestCommit(digest: string, size: number) {
    const entry = this.#ingests.get(digest);
    if (entry?.data.length !== size)
      throw new Error(`the partial blob holds ${entry?.data.length ?? 0} bytes, not ${size}`);
    this.#blobs.set(digest, entry.data.view().slice(0, size));
    this.#ingests.delete(digest);
  }
  async ingestDiscard(digest: string) {
    this.#ingests.delete(digest);
  }
  async ingests() {
    return [...this.#ingests].map(([digest, { state }]) => ({ digest, state }));
  }
  async readTags() {
    return new Map(this.#tags);
  }
  async writeTags(tags: Map<string, Descriptor>) {
    this.#tags = new Map(tags);
  }
  async estimate() {
    return undefined; // memory is not subject to the storage quota
  }
}

/**
 * A store in memory: for tests, short-lived workers, and places without durable storage.
 *
 * @param options Hasher, chunk size, checkpoint spacing, quota estimate.
 * @returns An empty store.
 *
 * @example
 * ```ts
 * declare const layer: Descriptor; // the digest and size the bytes must match
 * declare const body: ReadableStream<Uint8Array>;
 * const store = createMemoryStore();
 * await store.push(layer, body);
 * ```
 */
export function createMemoryStore(options: StoreOptions = {}): Store {
  return createStore(new MemoryBackend(), options);
}
