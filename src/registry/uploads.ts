/** Uploads: blobs in one request or PATCH by PATCH, cross-repository mounts. */
import { OciError } from "../errors.js";
import type { Descriptor } from "../oci/manifest.js";
import type { Reference } from "../reference.js";
import { pushScope, type RegistryApi, type RepositoryRef, type RequestOptions, toRepository } from "./api.js";
import { discard, responseError, streamsRequestBodies } from "./http.js";

/** Options of `RegistryClient.pushBlob`: the piece size of a chunked upload, and progress. */
export interface PushBlobOptions extends RequestOptions {
  /**
   * Bytes per PATCH when uploading a stream; lower it for registries that cap request bodies (100 MB
   * behind Cloudflare, for one). Default 64 MiB where `fetch` streams request bodies (Node: each
   * piece is streamed), else 8 MiB (browsers: each piece is buffered).
   */
  chunkSize?: number;
  /** Called with the bytes the registry has so far, as pieces go up. */
  onProgress?: (bytes: number) => void;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** Bytes per streamed PATCH (Node): large enough that request turnarounds do not count. */
const STREAMED_PIECE = 64 * 1024 * 1024;

/**
 * What `pushBlob` sends: bytes or a `Blob` (one request), a stream (PATCH by PATCH), or a function
 * giving the bytes from an offset (PATCH by PATCH, and a cut upload resumes where the registry says
 * it got to).
 */
export type BlobContent =
  | Uint8Array
  | Blob
  | ReadableStream<Uint8Array>
  | ((offset: number) => Promise<ReadableStream<Uint8Array>>);

/** Times a cut upload is resumed before the error is given up to the caller. */
const RESUMES = 3;

/**
 * Uploads a blob unless the registry has it: in one request for bytes or a `Blob`; a stream PATCH
 * by PATCH (see `chunkSize`). The registry checks the digest; a mismatch is `DIGEST_MISMATCH`.
 * Returns false when the blob was already there.
 */
export async function pushBlob(
  api: RegistryApi,
  repository: RepositoryRef,
  descriptor: Pick<Descriptor, "digest" | "size">,
  content: BlobContent,
  options: PushBlobOptions = {},
): Promise<boolean> {
  const ref = toRepository(repository);
  const { signal } = options;
  const action = `push blob ${descriptor.digest} to ${ref.registry}/${ref.repository}`;
  const { chunkSize } = options;
  if (chunkSize !== undefined && !(Number.isSafeInteger(chunkSize) && chunkSize > 0)) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot ${action}: chunkSize ${chunkSize} is not a positive byte count`,
    );
  }
  if (await blobExistsForPush(api, ref, descriptor, signal)) return false;
  const location = await startUpload(api, ref, "", action, signal);
  /** Ends the upload: the final PUT naming the digest, with the bytes when they go in one request. */
  const finish = async (at: string, body?: BodyInit) => {
    const done = new URL(at);
    done.searchParams.set("digest", descriptor.digest);
    const response = await api.requestUrl(done, ref, {
      action,
      method: "PUT",
      scopes: pushScope(ref),
      ...(body === undefined ? {} : { headers: { "content-type": "application/octet-stream" }, body }),
      signal,
    });
    if (response.status !== 201) throw await responseError(response, action);
    discard(response);
  };
  if (content instanceof Uint8Array || content instanceof Blob) {
    await finish(location, content as BodyInit);
    options.onProgress?.(descriptor.size);
    return true;
  }
  const session = { location, offset: 0 };
  let closed: boolean;
  if (content instanceof ReadableStream) {
    closed = await upload(api, session, ref, descriptor, content, action, options);
  } else {
    for (let resumes = 0; ; resumes++) {
      try {
        closed = await upload(api, session, ref, descriptor, await content(session.offset), action, options);
        break;
      } catch (error) {
        const code = (error as OciError).code;
        if (resumes >= RESUMES || (code !== "NETWORK" && code !== "TIMEOUT")) throw error;
        Object.assign(
          session,
          await resumePoint(api, ref, session.location, descriptor.size, action, signal),
        );
      }
    }
  }
  if (!closed) await finish(session.location);
  return true;
}

/** Where an upload stands: the location for its next request and the bytes the registry holds. */
interface UploadSession {
  location: string;
  offset: number;
}

/**
 * Sends the rest of a blob, bytes `session.offset` to its size (a stream of exactly those), PATCH by
 * PATCH, each piece with its Content-Range and Content-Length; the last piece goes in the PUT that
 * names the digest and ends the upload (the spec's final chunk), which saves a round trip per blob.
 * Returns false when there was nothing left to send (the caller ends the upload).
 *
 * Where `fetch` streams request bodies (Node), each request streams its piece from the source, so
 * reading, sending and the registry's hashing overlap (as one streamed request, Node 20's fetch held
 * nearly the whole body in memory: the piece bounds that). Elsewhere each piece is gathered into one
 * reused buffer first. A source shorter or longer than the size is `SIZE_MISMATCH`, and is
 * cancelled; the registry never receives a whole last piece of it (a longer source is seen before
 * the last piece's body ends, and that request fails). `session` follows each PATCH the registry
 * accepted, so a caller whose upload was cut knows where to ask the registry how far it got.
 */
async function upload(
  api: RegistryApi,
  session: UploadSession,
  ref: Reference,
  descriptor: Pick<Descriptor, "digest" | "size">,
  content: ReadableStream<Uint8Array>,
  action: string,
  options: PushBlobOptions,
): Promise<boolean> {
  const { size } = descriptor;
  const streamed = streamsRequestBodies();
  const pieceSize = options.chunkSize ?? (streamed ? STREAMED_PIECE : DEFAULT_CHUNK);
  const reader = content.getReader();
  let carry: Uint8Array | undefined;
  /** The source ended (as opposed to the request failing while it was read). */
  let ended = false;
  const next = async (): Promise<Uint8Array | undefined> => {
    const held = carry;
    carry = undefined;
    if (held) return held;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        return undefined;
      }
      if (value.byteLength > 0) return value;
    }
  };
  /** Set when the source went on past the size: the request carrying the last piece must fail. */
  let longer = false;
  const tooLong = () =>
    new OciError(
      "SIZE_MISMATCH",
      `Cannot ${action}: the content is longer than the descriptor's ${size} bytes`,
    );
  /** Whether the source ends here (a chunk past it is kept, and `longer` set). */
  const endsHere = async () => {
    const extra = await next();
    if (extra) carry = extra;
    longer = extra !== undefined;
    return !longer;
  };
  /**
   * The next `length` bytes of the source as they are read (fewer if it ends). The last piece ends
   * only once the source is seen to end: else its body fails, and so does its request.
   */
  const piece = (length: number, last: boolean, onBytes: (n: number) => void) => {
    let taken = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = taken < length ? await next() : undefined;
        if (!chunk) {
          if (last && taken === length && !(await endsHere())) return controller.error(tooLong());
          return controller.close();
        }
        const take = Math.min(chunk.byteLength, length - taken);
        if (take < chunk.byteLength) carry = chunk.subarray(take);
        taken += take;
        onBytes(take);
        controller.enqueue(chunk.subarray(0, take));
      },
    });
  };
  const short = (got: number) =>
    new OciError(
      "SIZE_MISMATCH",
      `Cannot ${action}: the content ended after ${got} bytes, not the descriptor's ${size}`,
    );
  const buffer = streamed ? undefined : new Uint8Array(Math.min(pieceSize, size));
  let sent = session.offset;
  try {
    if (sent >= size) {
      if (!(await endsHere())) throw tooLong();
      return false;
    }
    for (;;) {
      const length = Math.min(pieceSize, size - sent);
      const last = sent + length === size;
      let got = 0;
      let body: BodyInit;
      if (buffer) {
        const onBytes = (n: number) => {
          got += n;
        };
        for await (const chunk of piece(length, last, onBytes) as unknown as AsyncIterable<Uint8Array>) {
          buffer.set(chunk, got - chunk.byteLength);
        }
        if (got < length) throw short(sent + got);
        body = buffer.subarray(0, length) as BodyInit;
      } else {
        body = piece(length, last, (n) => {
          got += n;
          options.onProgress?.(sent + got);
        });
      }
      const target = new URL(session.location);
      if (last) target.searchParams.set("digest", descriptor.digest);
      const response = await api
        .requestUrl(target, ref, {
          scopes: pushScope(ref),
          action,
          method: last ? "PUT" : "PATCH",
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(length),
            "content-range": `${sent}-${sent + length - 1}`,
          },
          body,
          signal: options.signal,
        })
        .catch((error: unknown) => {
          if (longer) throw tooLong();
          throw ended && got < length ? short(sent + got) : error;
        });
      if (got < length || longer) {
        discard(response);
        throw longer ? tooLong() : short(sent + got);
      }
      if (response.status !== (last ? 201 : 202)) throw await responseError(response, action);
      session.location = new URL(response.headers.get("location") ?? session.location, session.location).href;
      discard(response);
      sent += length;
      session.offset = sent;
      options.onProgress?.(sent);
      if (last) return true;
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/**
 * After a cut upload: asks the registry how many bytes it holds (`GET` on the upload location,
 * `Range: 0-<last>`) and where to go on. A registry that lost the session, or kept part of a cut
 * request and so holds bytes its session state disagrees with (Distribution answers that with
 * `BLOB_UPLOAD_INVALID`), gets a new session from byte 0.
 */
async function resumePoint(
  api: RegistryApi,
  ref: Reference,
  location: string,
  size: number,
  action: string,
  signal: AbortSignal | undefined,
): Promise<UploadSession> {
  const response = await api.requestUrl(new URL(location), ref, {
    action,
    scopes: pushScope(ref),
    signal,
  });
  if (response.status === 404 || response.status === 400) {
    discard(response);
    return { location: await startUpload(api, ref, "", action, signal), offset: 0 };
  }
  if (response.status !== 204 && response.status !== 200) throw await responseError(response, action);
  discard(response);
  const last = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get("range") ?? "")?.[1];
  // Distribution says "0-0" for an empty upload as for one of 1 byte: read it as empty.
  const offset = last === undefined || last === "0" ? 0 : Number(last) + 1;
  if (!Number.isSafeInteger(offset) || offset > size) {
    throw new OciError(
      "REGISTRY_ERROR",
      `Cannot ${action}: the registry says it holds ${offset} of ${size} bytes`,
    );
  }
  return { location: new URL(response.headers.get("location") ?? location, location).href, offset };
}

async function blobExistsForPush(
  api: RegistryApi,
  ref: Reference,
  descriptor: Pick<Descriptor, "digest">,
  signal?: AbortSignal,
) {
  const action = `check blob ${descriptor.digest} in ${ref.registry}/${ref.repository}`;
  const response = await api.request(ref, `/blobs/${descriptor.digest}`, {
    action,
    method: "HEAD",
    scopes: pushScope(ref),
    signal,
  });
  if (response.status === 404) return false;
  if (!response.ok) throw await responseError(response, action);
  discard(response);
  return true;
}

async function startUpload(
  api: RegistryApi,
  ref: Reference,
  query: string,
  action: string,
  signal?: AbortSignal,
  scopes = pushScope(ref),
) {
  const response = await api.request(ref, `/blobs/uploads/${query}`, {
    action,
    method: "POST",
    scopes,
    signal,
  });
  if (response.status !== 201 && response.status !== 202) throw await responseError(response, action);
  discard(response);
  if (response.status === 201) return "";
  const location = response.headers.get("location");
  if (!location)
    throw new OciError("REGISTRY_ERROR", `Cannot ${action}: the registry gave no upload location`);
  return new URL(location, `${api.repositoryUrl(ref)}/`).href;
}

/**
 * Asks the registry to link a blob from another repository on the same registry (no upload).
 * Returns false when the registry declined (the caller then pushes the bytes).
 */
export async function mountBlob(
  api: RegistryApi,
  repository: RepositoryRef,
  from: string,
  descriptor: Pick<Descriptor, "digest">,
  options: RequestOptions = {},
): Promise<boolean> {
  const ref = toRepository(repository);
  const action = `mount blob ${descriptor.digest} from ${from} into ${ref.registry}/${ref.repository}`;
  const query = `?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(from)}`;
  const scopes = [...pushScope(ref), `repository:${from}:pull`];
  const location = await startUpload(api, ref, query, action, options.signal, scopes);
  if (location === "") return true;
  // Declined: cancel the upload session the registry opened instead.
  const cancel = await api.requestUrl(new URL(location), ref, {
    scopes,
    action,
    method: "DELETE",
    signal: options.signal,
  });
  discard(cancel);
  return false;
}
