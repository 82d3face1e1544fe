import type { CreateHasher } from "../digest/hasher.js";
import { createVerifyStream } from "../digest/verify.js";
import { blobEntry, blobEntrySize, type CacheLike } from "../store/cache.js";
import { ByteRangeStream } from "../streams.js";

const BLOB_PATH = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;

/** The digest a `GET /v2/<name>/blobs/<digest>` path asks for. */
export function blobDigest(path: string): string | undefined {
  return BLOB_PATH.exec(path)?.[1];
}

/** `bytes=a-b` / `bytes=a-` (one range) → [start, end] inclusive, clamped; undefined when absent or unusable. */
export function parseRange(header: string | null, size: number): [number, number] | undefined {
  const m = header ? /^bytes=(\d+)-(\d*)$/.exec(header.trim()) : null;
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  return start <= end ? [start, end] : undefined;
}

/**
 * How far the client's stream reads ahead of the client, in bytes: the client's pace drives the
 * upstream read, so an idle client holds at most this much (plus one upstream chunk) in the proxy.
 */
const CLIENT_READ_AHEAD = 1024 * 1024;
/** How far the cache's copy may fall behind: past it, the upstream read waits for the cache too. */
const CACHE_MAX_LAG = 8 * 1024 * 1024;

const byteLength = (chunk: Uint8Array) => chunk.byteLength;

/**
 * One upstream body read at the pace of the slower of the client and the cache, each chunk handed
 * to both, so the proxy never holds more than CLIENT_READ_AHEAD + CACHE_MAX_LAG for a blob. The
 * cache's copy is errored (nothing is stored) when the upstream fails or the client goes away;
 * when the cache gives up (a digest mismatch, or `stop` once its `put` settled) the client carries
 * on alone.
 */
function split(source: ReadableStream<Uint8Array>): {
  client: ReadableStream<Uint8Array>;
  cache: ReadableStream<Uint8Array>;
  stop: () => void;
} {
  const upstream = source.getReader();
  let toCache!: ReadableStreamDefaultController<Uint8Array>;
  let caching = true;
  /** Resolves the client's wait for room in the cache's queue. */
  let wake: (() => void) | undefined;
  const stopCaching = () => {
    caching = false;
    wake?.();
  };
  const cache = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        toCache = controller;
      },
      pull() {
        wake?.(); // called when the cache has read and its queue has room again
      },
      cancel: stopCaching,
    },
    { highWaterMark: CACHE_MAX_LAG, size: byteLength },
  );
  const abandon = (reason: unknown) => {
    if (caching) toCache.error(reason);
    stopCaching();
  };
  const client = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        while (caching && (toCache.desiredSize ?? 0) <= 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await upstream.read();
        } catch (error) {
          abandon(error);
          throw error;
        }
        if (next.done) {
          controller.close();
          if (caching) toCache.close();
          stopCaching();
          return;
        }
        controller.enqueue(next.value);
        if (caching) toCache.enqueue(next.value);
      },
      cancel(reason) {
        abandon(reason);
        return upstream.cancel(reason);
      },
    },
    { highWaterMark: CLIENT_READ_AHEAD, size: byteLength },
  );
  /**
   * The cache is done with its copy, read or not: a `put` that settled without reading to the end
   * (it refused the entry, or stored nothing) would otherwise hold the client back for good once
   * the copy fell CACHE_MAX_LAG behind. Erroring the copy also drops the chunks queued for it.
   */
  const stop = () => abandon(new Error("Cannot cache the blob: the cache stopped reading it"));
  return { client, cache, stop };
}

/**
 * Verified blobs by upstream registry and digest, immutable, shared by every caller. A blob is
 * stored only after the proxy hashed it while streaming it to its first client and the digest
 * matched. A hit is served only to a caller the registry itself admits: the caller's own request is
 * first sent upstream as a HEAD (its credentials, its repository), and only a 200 or a redirect to
 * another host (the registry's storage) lets the cached bytes out; anything else, a redirect on the
 * registry's own host included, and the registry answers the caller as if there were no cache.
 * So a blob fetched with one caller's credentials never reaches a caller without access.
 */
export class BlobCache {
  readonly #cache: CacheLike;
  readonly #createHasher: CreateHasher | undefined;
  readonly #maxBytes: number;

  constructor(cache: CacheLike, options: { createHasher?: CreateHasher | undefined; maxBytes: number }) {
    this.#cache = cache;
    this.#createHasher = options.createHasher;
    this.#maxBytes = options.maxBytes;
  }

  /** Keyed by registry as well: another registry's word on a digest says nothing about this one's blob. */
  #key(origin: string, host: string, digest: string): string {
    return `${origin}/.oci-blob-cache/${encodeURIComponent(host)}/${digest.replace(":", "/")}`;
  }

  /**
   * A response from the cache, honouring `range`; undefined on a miss or when `mayRead` (the
   * registry's access check for this caller) says no.
   */
  async serve(
    origin: string,
    host: string,
    digest: string,
    range: string | null,
    mayRead: () => Promise<boolean>,
  ): Promise<Response | undefined> {
    const hit = await this.#cache.match(this.#key(origin, host, digest));
    if (!hit?.body) return undefined;
    if (!(await mayRead())) {
      await hit.body.cancel().catch(() => {});
      return undefined;
    }
    const size = blobEntrySize(hit);
    const headers = new Headers({
      "content-type": "application/octet-stream",
      "docker-content-digest": digest,
      "accept-ranges": "bytes",
      "x-oci-proxy-cache": "hit",
    });
    const span = Number.isSafeInteger(size) ? parseRange(range, size) : undefined;
    if (!span) {
      headers.set("content-length", String(size));
      return new Response(hit.body, { status: 200, headers });
    }
    const [start, end] = span;
    headers.set("content-length", String(end - start + 1));
    headers.set("content-range", `bytes ${start}-${end}/${size}`);
    return new Response(hit.body.pipeThrough(new ByteRangeStream(start, end + 1)), { status: 206, headers });
  }

  /** Whether an upstream 200 of a blob can be cached: its length is declared and within the limit. */
  fits(response: Response): boolean {
    const size = Number(response.headers.get("content-length") ?? Number.NaN);
    return response.body !== null && Number.isSafeInteger(size) && size <= this.#maxBytes;
  }

  /**
   * Splits a full upstream blob response: the client's pace drives the read (see `split`), and a
   * copy of each chunk is verified against `digest` and stored. Returns the client's body and the store's completion.
   */
  store(
    origin: string,
    host: string,
    digest: string,
    response: Response,
  ): { body: ReadableStream<Uint8Array>; done: Promise<void> } {
    if (!response.body || !this.fits(response)) {
      return { body: response.body ?? new ReadableStream(), done: Promise.resolve() };
    }
    const size = Number(response.headers.get("content-length"));
    const { client, cache, stop } = split(response.body);
    const verified = cache.pipeThrough(
      createVerifyStream({ digest, size }, this.#createHasher ? { createHasher: this.#createHasher } : {}),
    );
    const key = this.#key(origin, host, digest);
    const done = this.#cache
      .put(key, blobEntry(verified, size))
      .catch(() => {
        // A mismatch, a cut connection or a client gone: nothing is stored; the client verifies its own copy.
      })
      .finally(stop);
    return { body: client, done };
  }
}
