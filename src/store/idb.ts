import { createStore as createIdb, get, promisifyRequest, type UseStore } from "idb-keyval";
import type { Descriptor } from "../oci/manifest.js";
import type { IngestState, StoreBackend } from "./backend.js";
import { createStore } from "./engine.js";
import { checkCovers, heldBytes, heldSpans, trustedState } from "./pieces.js";
import type { Store, StoreOptions } from "./types.js";

// Keys (one object store, ordered by IndexedDB's array-key order):
//   ["b", digest]          committed blob record { size }
//   ["p", digest, start, end]  bytes [start, end) of a blob (the ingest writes them; commit only adds the record)
//   ["i", digest]          ingest checkpoint
//   ["t"]                  tags: [name, descriptor][]
const pieceRange = (digest: string, from = 0) =>
  IDBKeyRange.bound(["p", digest, from], ["p", digest, Number.POSITIVE_INFINITY]);
const kindRange = (kind: string) => IDBKeyRange.bound([kind], [kind, []]);

/**
 * A write transaction's outcome: its completion, or its abort with the transaction's error. Not
 * idb-keyval's promisifyRequest, which rejects on the first `error` event a failed request bubbles
 * up, before the abort sets `transaction.error`: a full quota read as `null` (seen in Firefox).
 */
function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onabort = () =>
      reject(transaction.error ?? new DOMException("The transaction was aborted", "AbortError"));
  });
}

function owned(bytes: Uint8Array): Uint8Array {
  // Structured clone stores a view's whole buffer: keep only the bytes.
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

class IdbBackend implements StoreBackend {
  readonly id: string;
  readonly #db: UseStore;

  constructor(name: string) {
    this.id = `idb:${name}`;
    this.#db = createIdb(`oci-model-loader:${name}`, "content");
  }

  #put(key: IDBValidKey, value: unknown): Promise<void> {
    return this.#db("readwrite", (s) => {
      s.put(value, key);
      return committed(s.transaction);
    });
  }

  #keys(range: IDBKeyRange): Promise<IDBValidKey[]> {
    return this.#db("readonly", (s) => promisifyRequest(s.getAllKeys(range)));
  }

  async has(digest: string) {
    return (await get(["b", digest], this.#db)) !== undefined;
  }

  /** Pieces as [start, end) with their keys, in order. */
  async #pieces(digest: string) {
    const keys = (await this.#keys(pieceRange(digest))) as [string, string, number, number][];
    return keys.map((key) => ({ key, start: key[2], end: key[3] }));
  }

  async #stream(digest: string, offset: number, length: number): Promise<ReadableStream<Uint8Array>> {
    const end = offset + length;
    const pieces = (await this.#pieces(digest)).filter((p) => p.end > offset && p.start < end);
    const db = this.#db;
    let i = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const piece = pieces[i++];
        if (!piece || length === 0) return controller.close();
        const bytes = (await get<Uint8Array>(piece.key, db)) ?? new Uint8Array(0);
        controller.enqueue(
          bytes.subarray(Math.max(0, offset - piece.start), Math.min(bytes.byteLength, end - piece.start)),
        );
      },
    });
  }

  async read(digest: string, offset: number, length: number) {
    return this.#stream(digest, offset, length);
  }

  async remove(digest: string) {
    await this.#db("readwrite", (s) => {
      s.delete(["b", digest]);
      s.delete(pieceRange(digest));
      return committed(s.transaction);
    });
  }

  async blobs() {
    return this.#db("readonly", async (s) => {
      const [keys, values] = await Promise.all([
        promisifyRequest(s.getAllKeys(kindRange("b"))),
        promisifyRequest(s.getAll(kindRange("b"))),
      ]);
      return keys.map((key, i) => ({
        digest: (key as string[])[1] as string,
        size: (values[i] as { size: number }).size,
      }));
    });
  }

  async ingestState(digest: string): Promise<IngestState | undefined> {
    const state = await get<IngestState>(["i", digest], this.#db);
    if (!state) return undefined;
    const pieces = await this.#pieces(digest);
    return heldSpans(trustedState(state, heldBytes(pieces)), pieces);
  }

  async ingestWrite(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    const straddling = (await this.#pieces(digest)).find((p) => p.start < offset && p.end > offset);
    const head = straddling
      ? (await get<Uint8Array>(straddling.key, this.#db))?.slice(0, offset - straddling.start)
      : undefined;
    await this.#db("readwrite", (s) => {
      s.delete(pieceRange(digest, offset));
      if (straddling && head) {
        s.delete(straddling.key);
        s.put(head, ["p", digest, straddling.start, offset]);
      }
      s.put(owned(bytes), ["p", digest, offset, offset + bytes.byteLength]);
      return committed(s.transaction);
    });
    recycle?.(bytes); // put() cloned it
  }

  /** A piece it overlaps was written by a push whose record never counted it: it goes whole. */
  async ingestWriteAt(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    const end = offset + bytes.byteLength;
    const stale = (await this.#pieces(digest)).filter((p) => p.start < end && p.end > offset);
    await this.#db("readwrite", (s) => {
      for (const piece of stale) s.delete(piece.key);
      s.put(owned(bytes), ["p", digest, offset, end]);
      return committed(s.transaction);
    });
    recycle?.(bytes); // put() cloned it
  }

  async ingestCheckpoint(digest: string, state: IngestState) {
    await this.#put(["i", digest], state);
  }

  async ingestRead(digest: string, offset: number, length: number) {
    return this.#stream(digest, offset, length);
  }

  async ingestCommit(digest: string, size: number) {
    checkCovers(await this.#pieces(digest), size);
    await this.#db("readwrite", (s) => {
      s.put({ size }, ["b", digest]);
      s.delete(["i", digest]);
      return committed(s.transaction);
    });
  }

  async ingestDiscard(digest: string) {
    if (await this.has(digest))
      return void (await this.#db("readwrite", (s) => {
        s.delete(["i", digest]);
        return committed(s.transaction);
      }));
    await this.#db("readwrite", (s) => {
      s.delete(["i", digest]);
      s.delete(pieceRange(digest));
      return committed(s.transaction);
    });
  }

  async ingests() {
    return this.#db("readonly", async (s) => {
      const [keys, values] = await Promise.all([
        promisifyRequest(s.getAllKeys(kindRange("i"))),
        promisifyRequest(s.getAll(kindRange("i"))),
      ]);
      return keys.map((key, i) => ({
        digest: (key as string[])[1] as string,
        state: values[i] as IngestState,
      }));
    });
  }

  async readTags() {
    return new Map((await get<[string, Descriptor][]>(["t"], this.#db)) ?? []);
  }

  async writeTags(tags: Map<string, Descriptor>) {
    await this.#put(["t"], [...tags]);
  }
}

/**
 * A store in IndexedDB (one database per store name): blobs kept as pieces of up to `chunkSize`
 * bytes, made visible by one record written when the digest matched.
 *
 * @param name The store's database name.
 * @param options Hasher, chunk size, checkpoint spacing, quota estimate.
 * @returns The store.
 *
 * @example
 * ```ts
 * const store = createIdbStore("models");
 * ```
 */
export function createIdbStore(name = "default", options: StoreOptions = {}): Store {
  return createStore(new IdbBackend(name), options);
}
