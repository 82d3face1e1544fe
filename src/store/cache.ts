import type { Descriptor } from "../oci/manifest.js";
import { ByteRangeStream } from "../streams.js";
import type { IngestState, StoreBackend } from "./backend.js";
import { createStore } from "./engine.js";
import { withLock } from "./lock.js";
import { checkCovers, heldBytes, heldSpans, trustedState } from "./pieces.js";
import type { Span, Store, StoreOptions } from "./types.js";

/** The part of the Cache API the proxy cache and this store use (Workers `caches.default`, a browser `CacheStorage` entry…). */
export interface CacheLike {
  /** The entry stored for a request, or undefined. */
  match(request: RequestInfo | URL): Promise<Response | undefined>;
  /** Stores a response for a request, replacing any entry; resolves once its body is stored. */
  put(request: RequestInfo | URL, response: Response): Promise<void>;
}

/** The Cache API methods this store uses (browsers' `caches.open(…)`, Workers' `caches.default`). */
export interface CacheStorageLike extends CacheLike {
  /** Removes an entry; true when there was one. */
  delete(request: RequestInfo | URL): Promise<boolean>;
}

interface Index {
  blobs: Record<string, number>;
  ingests: Record<
    string,
    {
      pieces: [number, number][];
      state?: { offset: number; updatedAt: number; hasherState?: number[]; spans?: Span[] };
    }
  >;
  tags: [string, Descriptor][];
}

function ingestEntry(index: Index, digest: string): Index["ingests"][string] {
  const entry = index.ingests[digest] ?? { pieces: [] };
  index.ingests[digest] = entry;
  return entry;
}

const HEADERS = {
  "content-type": "application/octet-stream",
  "cache-control": "public, max-age=31536000, immutable",
};

/** Cached responses may lose Content-Length (chunked); a blob's size rides along in this header. */
const SIZE_HEADER = "x-oci-blob-size";

/**
 * A blob as a Cache API entry, the one form both this store and the proxy's blob cache keep: its
 * size in a header of its own, immutable.
 */
export function blobEntry(body: ReadableStream<Uint8Array>, size: number): Response {
  return new Response(body, {
    headers: { ...HEADERS, "content-length": String(size), [SIZE_HEADER]: String(size) },
  });
}

/** The size of a blob kept by `blobEntry` (NaN when the entry says none). */
export function blobEntrySize(entry: Response): number {
  return Number(entry.headers.get(SIZE_HEADER) ?? entry.headers.get("content-length"));
}

/**
 * The Cache API: one entry per blob, ingest pieces as entries of their own, and an index entry
 * (Workers caches cannot list their keys). A cache may evict at will: blobs can disappear, never
 * turn wrong.
 */
class CacheBackend implements StoreBackend {
  readonly id: string;
  readonly #cache: Promise<CacheStorageLike>;
  readonly #base: string;

  constructor(cache: CacheStorageLike | Promise<CacheStorageLike>, name: string) {
    this.id = `cache:${name}`;
    this.#cache = Promise.resolve(cache);
    this.#base = `https://oci-model-loader.invalid/${encodeURIComponent(name)}/`;
  }

  #blobKey = (digest: string) => `${this.#base}blobs/${digest}`;
  #pieceKey = (digest: string, start: number) => `${this.#base}ingest/${digest}/${start}`;

  async #index(): Promise<Index> {
    const response = await (await this.#cache).match(`${this.#base}index`);
    return response ? ((await response.json()) as Index) : { blobs: {}, ingests: {}, tags: [] };
  }

  /** Read-modify-write of the index, serialised (Web Locks across tabs where they exist). */
  #update<T>(change: (index: Index) => T | Promise<T>): Promise<T> {
    return withLock(`oci-model-loader:${this.id}:index`, async () => {
      const index = await this.#index();
      const result = await change(index);
      await (await this.#cache).put(
        `${this.#base}index`,
        new Response(JSON.stringify(index), { headers: HEADERS }),
      );
      return result;
    });
  }

  async has(digest: string) {
    const hit = await (await this.#cache).match(this.#blobKey(digest));
    await hit?.body?.cancel();
    return hit !== undefined;
  }

  async read(digest: string, offset: number, length: number) {
    const hit = await (await this.#cache).match(this.#blobKey(digest));
    const body = hit?.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    return length === 0
      ? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
      : body.pipeThrough(new ByteRangeStream(offset, offset + length));
  }

  async remove(digest: string) {
    await (await this.#cache).delete(this.#blobKey(digest));
    await this.#update((index) => void delete index.blobs[digest]);
  }

  async blobs() {
    return Object.entries((await this.#index()).blobs).map(([digest, size]) => ({ digest, size }));
  }

  async ingestState(digest: string): Promise<IngestState | undefined> {
    const entry = (await this.#index()).ingests[digest];
    if (!entry?.state) return undefined;
    const { hasherState, ...rest } = entry.state;
    const state = hasherState ? { ...rest, hasherState: Uint8Array.from(hasherState) } : rest;
    // The cache may have evicted a piece the index still lists: count only pieces it still has.
    const cache = await this.#cache;
    const kept: { start: number; end: number }[] = [];
    for (const [start, size] of [...entry.pieces].sort((a, b) => a[0] - b[0])) {
      const hit = await cache.match(this.#pieceKey(digest, start));
      await hit?.body?.cancel();
      if (hit) kept.push({ start, end: start + size });
    }
    return heldSpans(trustedState(state, heldBytes(kept)), kept);
  }

  /**
   * Puts the piece at `offset`, then lists it in the index beside the pieces `kept` leaves (each
   * `[start, size]`, cut short where it says), and deletes the entries of those it leaves out (not
   * the one just put under the same key).
   */
  async #putPiece(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    kept: (pieces: [number, number][]) => [number, number][],
  ) {
    const cache = await this.#cache;
    await cache.put(
      this.#pieceKey(digest, offset),
      new Response(bytes as Uint8Array<ArrayBuffer>, { headers: HEADERS }),
    );
    const dropped = await this.#update((index) => {
      const entry = ingestEntry(index, digest);
      const keep = kept(entry.pieces);
      const gone = entry.pieces.filter(([start]) => start !== offset && !keep.some(([s]) => s === start));
      entry.pieces = [...keep, [offset, bytes.byteLength]];
      return gone;
    });
    for (const [start] of dropped) await cache.delete(this.#pieceKey(digest, start));
  }

  async ingestWrite(digest: string, offset: number, bytes: Uint8Array) {
    // A piece that ran past `offset` keeps its bytes before it only; those after it go.
    await this.#putPiece(digest, offset, bytes, (pieces) =>
      pieces
        .filter(([start]) => start < offset)
        .map(([start, size]): [number, number] => [start, Math.min(size, offset - start)]),
    );
  }

  /** A piece it overlaps was written by a push whose record never counted it: it goes whole. */
  async ingestWriteAt(digest: string, offset: number, bytes: Uint8Array) {
    const end = offset + bytes.byteLength;
    await this.#putPiece(digest, offset, bytes, (pieces) =>
      pieces.filter(([start, size]) => !(start < end && start + size > offset)),
    );
  }

  async ingestCheckpoint(digest: string, state: IngestState) {
    await this.#update((index) => {
      const entry = ingestEntry(index, digest);
      const { hasherState, ...rest } = state;
      entry.state = hasherState ? { ...rest, hasherState: Array.from(hasherState) } : rest;
    });
  }

  async #piecesStream(digest: string, offset: number, length: number): Promise<ReadableStream<Uint8Array>> {
    const cache = await this.#cache;
    const keyOf = (start: number) => this.#pieceKey(digest, start);
    const pieces = ((await this.#index()).ingests[digest]?.pieces ?? []).sort((a, b) => a[0] - b[0]);
    const end = offset + length;
    const wanted = pieces.filter(([start, size]) => start + size > offset && start < end);
    let i = 0;
    let at = offset;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const piece = wanted[i++];
        if (!piece) {
          if (at < end) return controller.error(new Error(`the pieces of ${digest} end at byte ${at}`));
          return controller.close();
        }
        const [start, size] = piece;
        if (start > at) return controller.error(new Error(`bytes ${at}-${start} of ${digest} are missing`));
        const hit = await cache.match(keyOf(start));
        if (!hit) return controller.error(new Error(`piece ${start} of ${digest} was evicted`));
        const bytes = new Uint8Array(await hit.arrayBuffer());
        if (bytes.byteLength < size)
          return controller.error(new Error(`piece ${start} of ${digest} was cut short`));
        const part = bytes.subarray(at - start, Math.min(size, end - start));
        at += part.byteLength;
        controller.enqueue(part);
      },
    });
  }

  async ingestRead(digest: string, offset: number, length: number) {
    return this.#piecesStream(digest, offset, length);
  }

  async ingestCommit(digest: string, size: number) {
    const pieces = (await this.#index()).ingests[digest]?.pieces ?? [];
    checkCovers(
      pieces.map(([start, length]) => ({ start, end: start + length })),
      size,
    );
    const body = await this.#piecesStream(digest, 0, size);
    await (await this.#cache).put(this.#blobKey(digest), blobEntry(body, size));
    await this.#update((index) => {
      index.blobs[digest] = size;
    });
    await this.ingestDiscard(digest);
  }

  async ingestDiscard(digest: string) {
    const pieces = await this.#update((index) => {
      const gone = index.ingests[digest]?.pieces ?? [];
      delete index.ingests[digest];
      return gone;
    });
    const cache = await this.#cache;
    for (const [start] of pieces) await cache.delete(this.#pieceKey(digest, start));
  }

  async ingests() {
    return Object.entries((await this.#index()).ingests).map(([digest, entry]) => ({
      digest,
      state: entry.state
        ? {
            offset: entry.state.offset,
            updatedAt: entry.state.updatedAt,
            ...(entry.state.spans ? { spans: entry.state.spans } : {}),
          }
        : { offset: entry.pieces.reduce((n, [, size]) => n + size, 0), updatedAt: 0 },
    }));
  }

  async readTags() {
    return new Map((await this.#index()).tags);
  }

  async writeTags(tags: Map<string, Descriptor>) {
    await this.#update((index) => {
      index.tags = [...tags];
    });
  }
}

/**
 * A store in the Cache API: in browsers (`caches.open`) and on Cloudflare Workers
 * (`caches.default`). Give a cache, or a name to open one with `caches.open`.
 *
 * @param cache A Cache API cache, or the name of one to open with `caches.open` (default `oci-model-loader`).
 * @param options The store options, and `name` to tell stores in one cache apart.
 * @returns The store.
 *
 * @example
 * ```ts
 * const store = createCacheStore(await caches.open("models")); // on Workers: caches.default
 * ```
 */
export function createCacheStore(
  cache: CacheStorageLike | string = "oci-model-loader",
  options: StoreOptions & { name?: string } = {},
): Store {
  const name = options.name ?? (typeof cache === "string" ? cache : "default");
  const opened = typeof cache === "string" ? (globalThis.caches as CacheStorage).open(cache) : cache;
  return createStore(new CacheBackend(opened as CacheStorageLike | Promise<CacheStorageLike>, name), options);
}
