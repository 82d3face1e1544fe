import { type CreateHasher, digestBytes, type Hasher, parseDigest } from "../digest/hasher.js";
import { createDefaultHasher } from "../digest/hashers.js";
import { createVerifyStream } from "../digest/verify.js";
import { OciError } from "../errors.js";
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndex,
  MANIFEST_SIZE_LIMIT,
  type Manifest,
  type Platform,
  parseManifest,
} from "../oci/manifest.js";
import { isModelMediaType, MANIFEST_ACCEPT } from "../oci/media-types.js";
import {
  digestProblem,
  manifestReference,
  parseReference,
  type Reference,
  registryApiHost,
  withDigest,
} from "../reference.js";
import { ByteRangeStream } from "../streams.js";
import type { CredentialProvider } from "./credentials.js";
import { isLoopbackHost } from "./hosts.js";
import { discard, readCapped, responseError, streamsRequestBodies } from "./http.js";
import type { ProxyOption } from "./proxy-url.js";
import { type RegistryRequest, Transport } from "./transport.js";

export interface RegistryClientOptions {
  /** The fetch to use (default: the global one). Wrap it to add logging or a custom agent. */
  fetch?: typeof fetch;
  /** Credentials by registry host, or a function asked per registry. */
  credentials?: CredentialProvider;
  /** Hash implementation (default: feature-detected; `oci-model-loader/node` passes `node:crypto`). */
  createHasher?: CreateHasher;
  /**
   * Use plain http: `true` for every registry, or a list of hosts (`"myregistry:5000"`).
   * Loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`) always use http.
   */
  plainHttp?: boolean | string[];
  /** Retries of failed idempotent requests (network errors, 5xx, 429). Default 3. */
  retries?: number;
  /** First retry delay in ms, doubling with jitter up to 8 s. Default 250. */
  retryDelay?: number;
  /** Idle timeout in ms: the longest wait for headers or for the next chunk of a body. Default 30 000. */
  timeout?: number;
  /** When an index has several manifests and none is a model artifact, prefer this platform. */
  platform?: Partial<Platform>;
  /** Clock for token expiry (ms since the epoch). Default `Date.now`. */
  now?: () => number;
  /**
   * A CORS proxy for browsers (`oci-model-loader/proxy`): its base URL, so that
   * `https://host/path` is fetched as `<proxy>/host/path` — registry, token realm and redirects
   * alike — or a function mapping each URL.
   */
  proxy?: ProxyOption;
}

/** A repository: a parsed reference or a reference string (its tag or digest is ignored). */
export type RepositoryRef = Reference | string;

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface GetManifestOptions extends RequestOptions {
  /** Resolve an index to one of its manifests (default true). */
  resolveIndex?: boolean;
}

/** A manifest fetched and verified against its digest. */
export interface ManifestResult<M extends Manifest = Manifest> {
  /** The reference, pinned to the manifest's digest. */
  reference: Reference;
  digest: string;
  mediaType: string;
  manifest: M;
  /** The exact bytes that hash to `digest`. */
  bytes: Uint8Array;
  /** The index this manifest was chosen from, when the reference named an index. */
  index?: { digest: string; mediaType: string; manifest: ImageIndex };
}

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

export interface PushBlobOptions extends RequestOptions {
  /**
   * Bytes per PATCH when uploading a stream; lower it for registries that cap request bodies (100 MB
   * behind Cloudflare, for one). Default 64 MiB where `fetch` streams request bodies (Node: each
   * piece is streamed), else 8 MiB (browsers: each piece is buffered).
   */
  chunkSize?: number;
  onProgress?: (bytes: number) => void;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** Bytes per streamed PATCH (Node): large enough that request turnarounds do not count. */
const STREAMED_PIECE = 64 * 1024 * 1024;
const MAX_TAG_PAGES = 10_000;
/** The most bytes of tag lists `listTags` reads, all pages together: over a million tags. */
const TAG_LIST_LIMIT = 64 * 1024 * 1024;
const MAX_INDEX_DEPTH = 2;
const INDEX_PROBE_LIMIT = 16;

function toRepository(repository: RepositoryRef): Reference {
  return typeof repository === "string" ? parseReference(repository) : repository;
}

function pullScope(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull`];
}

function pushScope(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull,push`];
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

function matchesPlatform(candidate: Platform | undefined, wanted: Partial<Platform>): boolean {
  if (!candidate) return false;
  return (Object.keys(wanted) as (keyof Platform)[]).every(
    (k) => wanted[k] === undefined || candidate[k] === wanted[k],
  );
}

/**
 * A fetch-only OCI distribution client: manifests (verified, indexes resolved), verified blob
 * streams with resume, tags, and the push primitives. Runs unchanged in browsers, workers and Node.
 *
 * @example
 * ```ts
 * const client = createRegistryClient();
 * const { manifest } = await client.getManifest("ghcr.io/acme/model:v1");
 * const stream = await client.fetchBlob("ghcr.io/acme/model", manifest.layers[0]);
 * ```
 */
export function createRegistryClient(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient(options);
}

export class RegistryClient {
  readonly #transport: Transport;
  readonly #createHasher: CreateHasher;
  readonly #plainHttp: boolean | string[];
  readonly #platform: Partial<Platform> | undefined;

  constructor(options: RegistryClientOptions = {}) {
    this.#plainHttp = options.plainHttp ?? false;
    this.#createHasher = options.createHasher ?? createDefaultHasher;
    this.#platform = options.platform;
    this.#transport = new Transport({
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      credentials: options.credentials,
      retries: options.retries ?? 3,
      retryDelay: options.retryDelay ?? 250,
      timeoutMs: options.timeout ?? 30_000,
      now: options.now ?? Date.now,
      allowsPlainHttp: (host) => this.#allowsPlainHttp(host),
      registryOrigin: (registry) => this.#origin(registry),
      proxy: options.proxy,
    });
  }

  #allowsPlainHttp(host: string): boolean {
    if (this.#plainHttp === true || isLoopbackHost(host)) return true;
    return Array.isArray(this.#plainHttp) && this.#plainHttp.includes(host);
  }

  /** A registry's API origin, `https://host[:port]` (http where plain http is allowed), normalised as `URL.origin`. */
  #origin(registry: string): string {
    const host = registryApiHost(registry);
    return new URL(`${this.#allowsPlainHttp(host) ? "http" : "https"}://${host}`).origin;
  }

  /** The base URL of a repository's API: `https://host/v2/<repository>`. */
  repositoryUrl(ref: Reference): string {
    return `${this.#origin(ref.registry)}/v2/${ref.repository}`;
  }

  #request(
    ref: Reference,
    path: string,
    request: Omit<RegistryRequest, "registry" | "scopes"> & { scopes?: string[] },
  ) {
    const url = new URL(`${this.repositoryUrl(ref)}${path}`);
    return this.#transport.request(url, {
      ...request,
      registry: ref.registry,
      scopes: request.scopes ?? pullScope(ref),
    });
  }

  /**
   * Fetches a manifest by tag or digest, refuses it over 4 MiB, verifies its bytes against the
   * reference's digest and the registry's `Docker-Content-Digest`, and resolves an index to one
   * manifest (a model artifact first, else the configured platform, else the first entry).
   */
  getManifest(
    reference: RepositoryRef,
    options?: GetManifestOptions & { resolveIndex?: true },
  ): Promise<ManifestResult<ImageManifest>>;
  getManifest(reference: RepositoryRef, options: GetManifestOptions): Promise<ManifestResult>;
  async getManifest(reference: RepositoryRef, options: GetManifestOptions = {}): Promise<ManifestResult> {
    const ref = toRepository(reference);
    const result = await this.#fetchManifest(ref, manifestReference(ref), options.signal);
    if (options.resolveIndex === false || !isIndex(result.manifest)) return result;
    return this.#resolveIndex(ref, result, options.signal, new Set([result.digest]), 1);
  }

  async #fetchManifest(ref: Reference, target: string, signal?: AbortSignal): Promise<ManifestResult> {
    const action = `fetch manifest ${ref.registry}/${ref.repository}@${target}`.replace(/@(?!sha)/, ":");
    const response = await this.#request(ref, `/manifests/${target}`, {
      action,
      headers: { accept: MANIFEST_ACCEPT },
      signal,
    });
    if (!response.ok) throw await responseError(response, action);
    const bytes = await readCapped(response, MANIFEST_SIZE_LIMIT, "MANIFEST_INVALID", action);
    const pinned = target.includes(":") ? target : undefined;
    const header = response.headers.get("docker-content-digest") ?? undefined;
    if (header !== undefined && digestProblem(header)) {
      throw new OciError(
        "MANIFEST_INVALID",
        `Cannot ${action}: the registry sent an invalid Docker-Content-Digest "${header}"`,
      );
    }
    const expected = pinned ?? header;
    const algorithm = expected ? parseDigest(expected).algorithm : "sha256";
    const digest = await digestBytes(bytes, this.#createHasher, algorithm);
    for (const claimed of [pinned, header]) {
      if (claimed !== undefined && claimed !== digest && parseDigest(claimed).algorithm === algorithm) {
        throw new OciError(
          "DIGEST_MISMATCH",
          `Cannot ${action}: the manifest hashes to ${digest}, not ${claimed}`,
        );
      }
    }
    const manifest = parseManifest(bytes, response.headers.get("content-type") ?? "", `${ref}`);
    return { reference: withDigest(ref, digest), digest, mediaType: manifest.mediaType, manifest, bytes };
  }

  async #resolveIndex(
    ref: Reference,
    index: ManifestResult,
    signal: AbortSignal | undefined,
    seen: Set<string>,
    depth: number,
  ): Promise<ManifestResult<ImageManifest>> {
    const entries = (index.manifest as ImageIndex).manifests;
    const what = `index ${ref.registry}/${ref.repository}@${index.digest}`;
    if (entries.length === 0)
      throw new OciError("MANIFEST_INVALID", `Cannot resolve ${what}: it lists no manifests`);
    const platform = this.#platform;
    // An entry whose artifactType names a model is taken as is. Otherwise the children are looked
    // at (the platform match first, so one that is a model costs one fetch): the first whose
    // artifactType or config is a model wins, else the platform match, else the first entry. A
    // platform match alone never hides a model whose index entry lacks artifactType (skopeo and
    // older tools drop it).
    const chosen = entries.find((d) => isModelMediaType(d.artifactType));
    const match = platform ? entries.find((d) => matchesPlatform(d.platform, platform)) : undefined;
    const candidates = chosen
      ? [chosen]
      : (match ? [match, ...entries.filter((d) => d !== match)] : entries).slice(0, INDEX_PROBE_LIMIT);
    let first: ManifestResult<ImageManifest> | undefined;
    for (const descriptor of candidates) {
      if (seen.has(descriptor.digest)) {
        throw new OciError(
          "MANIFEST_INVALID",
          `Cannot resolve ${what}: it refers back to ${descriptor.digest}`,
        );
      }
      let child = await this.#fetchManifest(ref, descriptor.digest, signal);
      if (isIndex(child.manifest)) {
        if (depth >= MAX_INDEX_DEPTH) {
          throw new OciError(
            "MANIFEST_INVALID",
            `Cannot resolve ${what}: indexes nest more than ${MAX_INDEX_DEPTH} deep`,
          );
        }
        child = await this.#resolveIndex(
          ref,
          child,
          signal,
          new Set([...seen, descriptor.digest]),
          depth + 1,
        );
      }
      const m = child.manifest as ImageManifest;
      const resolved: ManifestResult<ImageManifest> = {
        ...child,
        manifest: m,
        index: { digest: index.digest, mediaType: index.mediaType, manifest: index.manifest as ImageIndex },
      };
      if (chosen || isModelMediaType(m.artifactType) || isModelMediaType(m.config.mediaType)) return resolved;
      first ??= resolved;
    }
    return first as ManifestResult<ImageManifest>;
  }

  /** Asks whether a manifest exists and returns its descriptor, without downloading it; undefined when absent. */
  async headManifest(
    reference: RepositoryRef,
    options: RequestOptions = {},
  ): Promise<Descriptor | undefined> {
    const ref = toRepository(reference);
    const target = manifestReference(ref);
    const action = `check manifest ${ref.registry}/${ref.repository} ${target}`;
    const response = await this.#request(ref, `/manifests/${target}`, {
      action,
      method: "HEAD",
      headers: { accept: MANIFEST_ACCEPT },
      signal: options.signal,
    });
    if (response.status === 404) return undefined;
    if (!response.ok) throw await responseError(response, action);
    const digest = response.headers.get("docker-content-digest");
    const size = Number(response.headers.get("content-length"));
    const mediaType = response.headers.get("content-type")?.split(";")[0]?.trim();
    if (!digest || digestProblem(digest) || !Number.isSafeInteger(size) || !mediaType) {
      const full = await this.#fetchManifest(ref, target, options.signal);
      return { mediaType: full.mediaType, digest: full.digest, size: full.bytes.byteLength };
    }
    return { mediaType, digest, size };
  }

  /**
   * Streams a blob, verified: the stream errors with `SIZE_MISMATCH` as soon as it runs past the
   * descriptor's size or ends short, and with `DIGEST_MISMATCH` at the end. With `offset` it asks
   * only for the rest (`Range`) and continues the hash from `hasher` or a re-hash of `prefix`.
   */
  async fetchBlob(
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
    const hasher = offset > 0 ? await this.#resumeHasher(descriptor, offset, options) : undefined;
    const verify = createVerifyStream(descriptor, {
      createHasher: this.#createHasher,
      offset,
      ...(hasher ? { hasher } : {}),
      ...(options.onProgress ? { onBytes: options.onProgress } : {}),
    });
    if (offset === descriptor.size) {
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() }).pipeThrough(verify);
    }
    const response = await this.#request(ref, `/blobs/${descriptor.digest}`, {
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
   * a tensor reader checks what it parses). `Range` is sent; a server that ignores it is handled.
   */
  async fetchBlobRange(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest" | "size">,
    options: RequestOptions & { offset?: number; length?: number } = {},
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
    const whole = offset === 0 && length === descriptor.size;
    const response = await this.#request(ref, `/blobs/${descriptor.digest}`, {
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

  async #resumeHasher(
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
    const hasher = await this.#createHasher(parseDigest(descriptor.digest).algorithm);
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
  async blobExists(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest">,
    options: RequestOptions = {},
  ) {
    const ref = toRepository(repository);
    const action = `check blob ${descriptor.digest} in ${ref.registry}/${ref.repository}`;
    const response = await this.#request(ref, `/blobs/${descriptor.digest}`, {
      action,
      method: "HEAD",
      signal: options.signal,
    });
    if (response.status === 404) return false;
    if (!response.ok) throw await responseError(response, action);
    discard(response);
    return true;
  }

  /** All tags of a repository, following `Link` pagination. */
  async listTags(
    repository: RepositoryRef,
    options: RequestOptions & { pageSize?: number } = {},
  ): Promise<string[]> {
    const ref = toRepository(repository);
    const action = `list tags of ${ref.registry}/${ref.repository}`;
    const tags: string[] = [];
    let url = new URL(`${this.repositoryUrl(ref)}/tags/list`);
    if (options.pageSize) url.searchParams.set("n", String(options.pageSize));
    const seen = new Set<string>();
    let total = 0;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      if (seen.has(url.href))
        throw new OciError(
          "REGISTRY_ERROR",
          `Cannot ${action}: the next page link loops back to ${url.href}`,
        );
      seen.add(url.href);
      const response = await this.#transport.request(url, {
        registry: ref.registry,
        scopes: pullScope(ref),
        action,
        signal: options.signal,
      });
      if (!response.ok) throw await responseError(response, action);
      const bytes = await readCapped(response, MANIFEST_SIZE_LIMIT, "REGISTRY_ERROR", action);
      total += bytes.byteLength;
      if (total > TAG_LIST_LIMIT) {
        throw new OciError(
          "REGISTRY_ERROR",
          `Cannot ${action}: the tag list runs past the ${TAG_LIST_LIMIT}-byte limit after ${page + 1} pages; is the registry paging in circles?`,
        );
      }
      let body: { tags?: unknown };
      try {
        body = JSON.parse(new TextDecoder().decode(bytes));
      } catch (cause) {
        throw new OciError("REGISTRY_ERROR", `Cannot ${action}: the response is not JSON`, { cause });
      }
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === "string"));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get("link") ?? "")?.[1];
      if (!next) return tags;
      const nextUrl = new URL(next, url);
      if (nextUrl.origin !== url.origin) {
        throw new OciError(
          "REGISTRY_ERROR",
          `Cannot ${action}: the next page is on another origin (${nextUrl.origin})`,
        );
      }
      url = nextUrl;
    }
    throw new OciError("REGISTRY_ERROR", `Cannot ${action}: more than ${MAX_TAG_PAGES} pages`);
  }

  /**
   * Uploads a blob unless the registry has it: in one request for bytes or a `Blob`; a stream PATCH
   * by PATCH (see `chunkSize`). The registry checks the digest; a mismatch is `DIGEST_MISMATCH`.
   * Returns false when the blob was already there.
   */
  async pushBlob(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest" | "size">,
    content: Uint8Array | Blob | ReadableStream<Uint8Array>,
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
    if (await this.#blobExistsForPush(ref, descriptor, signal)) return false;
    let location = await this.#startUpload(ref, "", action, signal);
    const scopes = pushScope(ref);
    if (!(content instanceof ReadableStream)) {
      const done = new URL(location);
      done.searchParams.set("digest", descriptor.digest);
      const response = await this.#transport.request(done, {
        registry: ref.registry,
        scopes,
        action,
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        body: content as BodyInit,
        signal,
      });
      if (response.status !== 201) throw await responseError(response, action);
      discard(response);
      options.onProgress?.(descriptor.size);
      return true;
    }
    location = await this.#upload(location, ref, descriptor.size, content, action, options);
    const done = new URL(location);
    done.searchParams.set("digest", descriptor.digest);
    const response = await this.#transport.request(done, {
      registry: ref.registry,
      scopes,
      action,
      method: "PUT",
      signal,
    });
    if (response.status !== 201) throw await responseError(response, action);
    discard(response);
    return true;
  }

  /**
   * Sends a stream of exactly `size` bytes PATCH by PATCH, each piece with its Content-Range and
   * Content-Length. Where `fetch` streams request bodies (Node), each PATCH streams its piece from the
   * source, so reading, sending and the registry's hashing overlap (as one streamed request, Node
   * 20's fetch held nearly the whole body in memory: the piece bounds that). Elsewhere each piece is
   * gathered into one reused buffer first. A source shorter or longer than `size` is `SIZE_MISMATCH`,
   * and is cancelled.
   */
  async #upload(
    start: string,
    ref: Reference,
    size: number,
    content: ReadableStream<Uint8Array>,
    action: string,
    options: PushBlobOptions,
  ): Promise<string> {
    const streamed = streamsRequestBodies();
    const pieceSize = options.chunkSize ?? (streamed ? STREAMED_PIECE : DEFAULT_CHUNK);
    const reader = content.getReader();
    let carry: Uint8Array | undefined;
    const next = async (): Promise<Uint8Array | undefined> => {
      const held = carry;
      carry = undefined;
      if (held) return held;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        if (value.byteLength > 0) return value;
      }
    };
    /** The next `length` bytes of the source as they are read (fewer if it ends). */
    const piece = (length: number, onBytes: (n: number) => void) => {
      let taken = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          const chunk = taken < length ? await next() : undefined;
          if (!chunk) return controller.close();
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
    let location = start;
    let sent = 0;
    try {
      while (sent < size) {
        const length = Math.min(pieceSize, size - sent);
        let got = 0;
        let body: BodyInit;
        if (buffer) {
          const onBytes = (n: number) => {
            got += n;
          };
          for await (const chunk of piece(length, onBytes) as unknown as AsyncIterable<Uint8Array>) {
            buffer.set(chunk, got - chunk.byteLength);
          }
          if (got < length) throw short(sent + got);
          body = buffer.subarray(0, length) as BodyInit;
        } else {
          body = piece(length, (n) => {
            got += n;
            options.onProgress?.(sent + got);
          });
        }
        const response = await this.#transport
          .request(new URL(location), {
            registry: ref.registry,
            scopes: pushScope(ref),
            action,
            method: "PATCH",
            headers: {
              "content-type": "application/octet-stream",
              "content-length": String(length),
              "content-range": `${sent}-${sent + length - 1}`,
            },
            body,
            signal: options.signal,
          })
          .catch((error: unknown) => {
            throw got < length ? short(sent + got) : error;
          });
        if (got < length) {
          discard(response);
          throw short(sent + got);
        }
        if (response.status !== 202) throw await responseError(response, action);
        location = new URL(response.headers.get("location") ?? location, location).href;
        discard(response);
        sent += length;
        options.onProgress?.(sent);
      }
      if (await next()) {
        throw new OciError(
          "SIZE_MISMATCH",
          `Cannot ${action}: the content is longer than the descriptor's ${size} bytes`,
        );
      }
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      reader.releaseLock();
    }
    return location;
  }

  async #blobExistsForPush(ref: Reference, descriptor: Pick<Descriptor, "digest">, signal?: AbortSignal) {
    const action = `check blob ${descriptor.digest} in ${ref.registry}/${ref.repository}`;
    const response = await this.#request(ref, `/blobs/${descriptor.digest}`, {
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

  async #startUpload(
    ref: Reference,
    query: string,
    action: string,
    signal?: AbortSignal,
    scopes = pushScope(ref),
  ) {
    const response = await this.#request(ref, `/blobs/uploads/${query}`, {
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
    return new URL(location, `${this.repositoryUrl(ref)}/`).href;
  }

  /**
   * Asks the registry to link a blob from another repository on the same registry (no upload).
   * Returns false when the registry declined (the caller then pushes the bytes).
   */
  async mountBlob(
    repository: RepositoryRef,
    from: string,
    descriptor: Pick<Descriptor, "digest">,
    options: RequestOptions = {},
  ): Promise<boolean> {
    const ref = toRepository(repository);
    const action = `mount blob ${descriptor.digest} from ${from} into ${ref.registry}/${ref.repository}`;
    const query = `?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(from)}`;
    const scopes = [...pushScope(ref), `repository:${from}:pull`];
    const location = await this.#startUpload(ref, query, action, options.signal, scopes);
    if (location === "") return true;
    // Declined: cancel the upload session the registry opened instead.
    const cancel = await this.#transport.request(new URL(location), {
      registry: ref.registry,
      scopes,
      action,
      method: "DELETE",
      signal: options.signal,
    });
    discard(cancel);
    return false;
  }

  /** Uploads a manifest under the reference's tag (or digest) and returns its digest. */
  async putManifest(
    reference: RepositoryRef,
    bytes: Uint8Array,
    mediaType: string,
    options: RequestOptions = {},
  ): Promise<string> {
    const ref = toRepository(reference);
    const target = manifestReference(ref);
    const action = `push manifest ${ref.registry}/${ref.repository} ${target}`;
    const digest = await digestBytes(bytes, this.#createHasher);
    const response = await this.#request(ref, `/manifests/${target}`, {
      action,
      method: "PUT",
      scopes: pushScope(ref),
      headers: { "content-type": mediaType },
      body: bytes as BodyInit,
      signal: options.signal,
    });
    if (response.status !== 201) throw await responseError(response, action);
    discard(response);
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== digest && stored.startsWith("sha256:")) {
      throw new OciError(
        "DIGEST_MISMATCH",
        `Cannot ${action}: the registry stored ${stored}, we sent ${digest}`,
      );
    }
    return digest;
  }
}
