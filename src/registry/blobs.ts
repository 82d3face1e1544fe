/** Blobs: verified streams with resume, raw ranges, existence checks. */
import { type Hasher, parseDigest } from "../digest/hasher.js";
import { createVerifyStream } from "../digest/verify.js";
import { OciError } from "../errors.js";
import type { Descriptor } from "../oci/manifest.js";
import { validSpans } from "../store/spans.js";
import type { BlobPiece, Span } from "../store/types.js";
import { ByteRangeStream } from "../streams.js";
import { type RegistryApi, type RepositoryRef, type RequestOptions, toRepository } from "./api.js";
import { discard, responseError } from "./http.js";
import { fetchInRanges, fetchPieces, type RangeOptions, wantsRanges } from "./ranges.js";

/** Options of `RegistryClient.fetchBlob`: where to resume from, and progress. */
export interface FetchBlobOptions extends RequestOptions {
  /** Fetch from this byte offset (`Range`); the bytes before it must come with `hasher` or `prefix`. */
  offset?: number;
  /** A hasher holding the state after the first `offset` bytes (from `Hasher.save`/`load`). */
  hasher?: Hasher;
  /** The first `offset` bytes, to re-hash when no hasher state was kept. */
  prefix?: ReadableStream<Uint8Array>;
  /** Called with the total verified-so-far byte count (including `offset`) as chunks arrive. */
  onProgress?: (bytes: number) => void;
}

/** Refuses a 206 whose Content-Range starts elsewhere than asked (when the header is visible). */
function checkRangeStart(response: Response, offset: number, action: string): void {
  if (response.status !== 206) return;
  const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
  if (start !== undefined && Number(start) !== offset) {
    discard(response);
    throw new OciError(
      "REGISTRY_ERROR",
      `Cannot ${action}: asked for bytes from ${offset}, got from ${start}`,
    );
  }
}

/**
 * Streams a blob, verified: the stream errors with `SIZE_MISMATCH` as soon as it runs past the
 * descriptor's size or ends short, and with `DIGEST_MISMATCH` at the end. With `offset` it asks
 * only for the rest (`Range`) and continues the hash from `hasher` or a re-hash of `prefix`.
 */
export async function fetchBlob(
  api: RegistryApi,
  repository: RepositoryRef,
  descriptor: Pick<Descriptor, "digest" | "size">,
  options: FetchBlobOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  const ref = toRepository(repository);
  const offset = options.offset ?? 0;
  const action = `fetch blob ${descriptor.digest} from ${ref.registry}/${ref.repository}`;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > descriptor.size) {
    throw new OciError("INVALID_ARGUMENT", `Cannot ${action}: offset ${offset} is outside the blob`);
  }
  const hasher = offset > 0 ? await resumeHasher(api, descriptor, offset, options) : undefined;
  const verify = createVerifyStream(descriptor, {
    createHasher: api.createHasher,
    offset,
    ...(hasher ? { hasher } : {}),
    ...(options.onProgress ? { onBytes: options.onProgress } : {}),
  });
  if (offset === descriptor.size) {
    return new ReadableStream<Uint8Array>({ start: (c) => c.close() }).pipeThrough(verify);
  }
  const response = await api.request(ref, `/blobs/${descriptor.digest}`, {
    action,
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    signal: options.signal,
  });
  if (!response.ok) throw await responseError(response, action);
  const length = response.headers.get("content-length");
  const expectedLength = response.status === 206 ? descriptor.size - offset : descriptor.size;
  if (length !== null && Number(length) !== expectedLength) {
    discard(response);
    throw new OciError(
      "SIZE_MISMATCH",
      `Cannot ${action}: the registry sends ${length} bytes where ${expectedLength} are expected`,
    );
  }
  checkRangeStart(response, offset, action);
  let body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  if (offset > 0 && response.status === 200) body = body.pipeThrough(new ByteRangeStream(offset));
  return body.pipeThrough(verify);
}

/**
 * Raw bytes `[offset, offset + length)` of a blob, not verified (a store verifies what it ingests,
 * a tensor reader checks what it parses). `Range` is sent; a server that ignores it is handled. With
 * `ranges`, a long range is fetched as several range requests at a time (`fetchInRanges`).
 */
export async function fetchBlobRange(
  api: RegistryApi,
  repository: RepositoryRef,
  descriptor: Pick<Descriptor, "digest" | "size">,
  options: RequestOptions & { offset?: number; length?: number; ranges?: RangeOptions } = {},
): Promise<ReadableStream<Uint8Array>> {
  const ref = toRepository(repository);
  const offset = options.offset ?? 0;
  const length = options.length ?? descriptor.size - offset;
  const action = `fetch bytes ${offset}+${length} of ${descriptor.digest} from ${ref.registry}/${ref.repository}`;
  if (
    ![offset, length].every(Number.isSafeInteger) ||
    offset < 0 ||
    length < 0 ||
    offset + length > descriptor.size
  ) {
    throw new OciError("INVALID_ARGUMENT", `Cannot ${action}: the range is outside the blob`);
  }
  if (length === 0) return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  if (options.ranges && wantsRanges(length, options.ranges))
    return fetchInRanges(api, ref, descriptor, offset, length, {
      ...options.ranges,
      signal: options.signal,
      action,
    });
  const whole = offset === 0 && length === descriptor.size;
  const response = await api.request(ref, `/blobs/${descriptor.digest}`, {
    action,
    headers: whole ? {} : { range: `bytes=${offset}-${offset + length - 1}` },
    signal: options.signal,
  });
  if (!response.ok) throw await responseError(response, action);
  checkRangeStart(response, offset, action);
  const partial = response.status === 206;
  let body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  // Exactly the bytes asked for, framed by Content-Length: the body as it is (no transform to
  // pass each chunk through).
  const exact = (partial || whole) && response.headers.get("content-length") === String(length);
  if (exact) return body;
  if (!partial && !whole) body = body.pipeThrough(new ByteRangeStream(offset));
  return body.pipeThrough(
    new ByteRangeStream(
      0,
      length,
      (received) =>
        new OciError("SIZE_MISMATCH", `Cannot ${action}: the registry sent ${received} of ${length} bytes`),
    ),
  );
}

/**
 * Raw bytes of several spans of a blob (sorted, apart, inside it), not verified, as pieces at their
 * offsets in the order they arrive. With `ranges` and enough bytes, they are fetched as range
 * requests side by side (`fetchPieces`); else each span in one request, one after another.
 */
export async function fetchBlobSpans(
  api: RegistryApi,
  repository: RepositoryRef,
  descriptor: Pick<Descriptor, "digest" | "size">,
  spans: readonly Span[],
  options: RequestOptions & { ranges?: RangeOptions } = {},
): Promise<ReadableStream<BlobPiece>> {
  const ref = toRepository(repository);
  const action = `fetch ${spans.length} spans of ${descriptor.digest} from ${ref.registry}/${ref.repository}`;
  if (validSpans(spans, 0, descriptor.size).length !== spans.length) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot ${action}: the spans are not sorted, apart and inside its ${descriptor.size} bytes`,
    );
  }
  const total = spans.reduce((n, [start, end]) => n + end - start, 0);
  if (options.ranges && wantsRanges(total, options.ranges))
    return fetchPieces(api, ref, descriptor, spans, { ...options.ranges, signal: options.signal, action });
  let i = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let offset = 0;
  return new ReadableStream<BlobPiece>({
    async pull(controller) {
      for (;;) {
        if (!reader) {
          const span = spans[i++];
          if (!span) return controller.close();
          offset = span[0];
          const { ranges: _, ...plain } = options;
          const stream = await fetchBlobRange(api, ref, descriptor, {
            ...plain,
            offset,
            length: span[1] - span[0],
          });
          reader = stream.getReader();
        }
        const { done, value } = await reader.read();
        if (done) {
          reader = undefined;
          continue;
        }
        controller.enqueue({ offset, bytes: value });
        offset += value.byteLength;
        return;
      }
    },
    cancel: (reason) => reader?.cancel(reason),
  });
}

async function resumeHasher(
  api: RegistryApi,
  descriptor: Pick<Descriptor, "digest" | "size">,
  offset: number,
  options: FetchBlobOptions,
): Promise<Hasher> {
  if (options.hasher) return options.hasher;
  if (!options.prefix) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot resume ${descriptor.digest} at ${offset}: pass the hasher state or the stored prefix`,
    );
  }
  const hasher = await api.createHasher(parseDigest(descriptor.digest).algorithm);
  let seen = 0;
  for await (const chunk of options.prefix) {
    seen += chunk.byteLength;
    await hasher.update(chunk);
  }
  if (seen !== offset) {
    throw new OciError(
      "SIZE_MISMATCH",
      `Cannot resume ${descriptor.digest}: the stored prefix has ${seen} bytes, not ${offset}`,
    );
  }
  return hasher;
}

/** Whether the registry has a blob (HEAD). */
export async function blobExists(
  api: RegistryApi,
  repository: RepositoryRef,
  descriptor: Pick<Descriptor, "digest">,
  options: RequestOptions = {},
) {
  const ref = toRepository(repository);
  const action = `check blob ${descriptor.digest} in ${ref.registry}/${ref.repository}`;
  const response = await api.request(ref, `/blobs/${descriptor.digest}`, {
    action,
    method: "HEAD",
    signal: options.signal,
  });
  if (response.status === 404) return false;
  if (!response.ok) throw await responseError(response, action);
  discard(response);
  return true;
}
