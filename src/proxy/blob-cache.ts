import type { CreateHasher } from "../digest/hasher.js";
import { createVerifyStream } from "../digest/verify.js";

/** The part of the Cache API the proxy uses (Workers `caches.default`, a browser `CacheStorage` entry…). */
export interface CacheLike {
  match(request: RequestInfo | URL): Promise<Response | undefined>;
  put(request: RequestInfo | URL, response: Response): Promise<void>;
}

/** Cached responses may lose Content-Length (chunked); the size rides along in this header. */
const SIZE_HEADER = "x-oci-blob-size";
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

function slice(body: ReadableStream<Uint8Array>, start: number, end: number): ReadableStream<Uint8Array> {
  let at = 0;
  return body.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        const from = Math.max(start - at, 0);
        const to = Math.min(end + 1 - at, chunk.byteLength);
        at += chunk.byteLength;
        if (from < to) controller.enqueue(chunk.subarray(from, to));
        if (at > end) controller.terminate();
      },
    }),
  );
}

/**
 * Blobs cached by digest, immutable. A blob is stored only after the proxy has hashed it while
 * streaming it to the client and the digest matched; hits are served with `Range` support.
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

  #key(origin: string, digest: string): string {
    return `${origin}/.oci-blob-cache/${digest.replace(":", "/")}`;
  }

  /** A response from the cache, honouring `range`; undefined on a miss. */
  async serve(origin: string, digest: string, range: string | null): Promise<Response | undefined> {
    const hit = await this.#cache.match(this.#key(origin, digest));
    if (!hit?.body) return undefined;
    const size = Number(hit.headers.get(SIZE_HEADER) ?? hit.headers.get("content-length"));
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
    return new Response(slice(hit.body, start, end), { status: 206, headers });
  }

  /**
   * Tees a full upstream blob response: one branch goes to the client, the other is verified
   * against `digest` and stored. Returns the client's body and the store's completion.
   */
  store(
    origin: string,
    digest: string,
    response: Response,
  ): { body: ReadableStream<Uint8Array>; done: Promise<void> } {
    const size = Number(response.headers.get("content-length"));
    if (!response.body || !Number.isSafeInteger(size) || size > this.#maxBytes) {
      return { body: response.body ?? new ReadableStream(), done: Promise.resolve() };
    }
    const [client, toCache] = response.body.tee();
    const verified = toCache.pipeThrough(
      createVerifyStream({ digest, size }, this.#createHasher ? { createHasher: this.#createHasher } : {}),
    );
    const headers = new Headers({
      "content-type": "application/octet-stream",
      "content-length": String(size),
      [SIZE_HEADER]: String(size),
      "cache-control": "public, max-age=31536000, immutable",
    });
    const done = this.#cache.put(this.#key(origin, digest), new Response(verified, { headers })).catch(() => {
      // A mismatch or a cut connection: nothing is stored; the client verifies its own copy.
    });
    return { body: client, done };
  }
}
