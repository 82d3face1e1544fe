import type { CreateHasher } from "../digest/hasher.js";
import { createDefaultHasher } from "../digest/hashers.js";
import type { Descriptor, ImageManifest, Platform } from "../oci/manifest.js";
import { isModelMediaType } from "../oci/media-types.js";
import type { Reference } from "../reference.js";
import type { BlobPiece, Span } from "../store/types.js";
import { RegistryApi, type RepositoryRef, type RequestOptions, toRepository } from "./api.js";
import { blobExists, type FetchBlobOptions, fetchBlob, fetchBlobRange, fetchBlobSpans } from "./blobs.js";
import type { CredentialProvider } from "./credentials.js";
import {
  type GetManifestOptions,
  getManifest,
  headManifest,
  type IndexPolicy,
  type ManifestResult,
  putManifest,
} from "./manifests.js";
import type { ProxyOption } from "./proxy-url.js";
import { placesRanges, type RangeOptions, rangesFor } from "./ranges.js";
import { listTags } from "./tags.js";
import { type BlobContent, mountBlob, type PushBlobOptions, pushBlob } from "./uploads.js";

export type { RepositoryRef, RequestOptions } from "./api.js";
export type { FetchBlobOptions } from "./blobs.js";
export type { GetManifestOptions, IndexPolicy, ManifestResult } from "./manifests.js";
export type { RangeOptions } from "./ranges.js";
export type { BlobContent, PushBlobOptions } from "./uploads.js";

/** How a `RegistryClient` reaches registries: fetch, credentials, hasher, retries, timeouts, proxy. */
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
  /**
   * Which manifest of an index to take first, by its `artifactType` or config media type. Default:
   * a model artifact's (`isModelMediaType`).
   */
  prefers?: (mediaType: string | undefined) => boolean;
  /**
   * How a large blob is fetched: several `Range` requests at a time (`connections`, default 8, of
   * `chunkBytes`, default 16 MiB) when the registry serves ranges and one connection is slow; one
   * request otherwise, and from a registry on loopback unless `connections` is set (there no network
   * limits one connection). `{ connections: 1 }` always fetches a blob in one request.
   */
  ranges?: RangeOptions;
  /** Clock for token expiry (ms since the epoch). Default `Date.now`. */
  now?: () => number;
  /**
   * A CORS proxy for browsers (`oci-model-loader/proxy`): its base URL, so that
   * `https://host/path` is fetched as `<proxy>/host/path` — registry, token realm and redirects
   * alike — or a function mapping each URL.
   */
  proxy?: ProxyOption;
}

/**
 * Creates a `RegistryClient`: a fetch-only OCI distribution client for browsers, workers and Node.
 *
 * @param options How to reach registries; every option has a default.
 * @returns A client; it caches auth tokens, so reuse it across requests.
 *
 * @example
 * ```ts
 * const client = createRegistryClient();
 * const { manifest } = await client.getManifest("ghcr.io/acme/model:v1");
 * for (const layer of manifest.layers) {
 *   const stream = await client.fetchBlob("ghcr.io/acme/model", layer); // verified as it is read
 *   console.log(layer.digest, (await new Response(stream).arrayBuffer()).byteLength);
 * }
 * ```
 */
export function createRegistryClient(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient(options);
}

/**
 * A fetch-only OCI distribution client: manifests (verified, indexes resolved), verified blob
 * streams with resume, tags, and the push primitives. Runs unchanged in browsers, workers and Node.
 * Each part lives in its own module (manifests.ts, blobs.ts, uploads.ts, tags.ts); this is their
 * one face, holding what they share (see api.ts).
 */
export class RegistryClient {
  readonly #api: RegistryApi;
  readonly #policy: IndexPolicy;
  readonly #ranges: RangeOptions;
  /**
   * Whether a pull from `repository` hands large blobs to its store range by range
   * (`RangeOptions.atOffsets`, default true; never from a registry on loopback by default).
   */
  rangesAtOffsets(repository: RepositoryRef): boolean {
    return placesRanges(this.#rangesFor(repository));
  }

  /** `RegistryClientOptions.ranges` for `repository`'s registry (`rangesFor`). */
  #rangesFor(repository: RepositoryRef): RangeOptions {
    return rangesFor(toRepository(repository).registry, this.#ranges);
  }

  /** @param options How to reach registries; every option has a default. */
  constructor(options: RegistryClientOptions = {}) {
    this.#policy = { prefers: options.prefers ?? isModelMediaType, platform: options.platform };
    this.#ranges = options.ranges ?? {};
    this.#api = new RegistryApi(
      {
        fetch: options.fetch ?? ((input, init) => fetch(input, init)),
        credentials: options.credentials,
        retries: options.retries ?? 3,
        retryDelay: options.retryDelay ?? 250,
        timeoutMs: options.timeout ?? 30_000,
        now: options.now ?? Date.now,
        proxy: options.proxy,
      },
      options.createHasher ?? createDefaultHasher,
      options.plainHttp ?? false,
    );
  }

  /** The base URL of a repository's API: `https://host/v2/<repository>`. */
  repositoryUrl(ref: Reference): string {
    return this.#api.repositoryUrl(ref);
  }

  /**
   * Fetches a manifest by tag or digest, refuses it over 4 MiB, verifies its bytes against the
   * reference's digest and the registry's `Docker-Content-Digest`, and resolves an index to one
   * manifest (a model artifact first — see `prefers` —, else the configured platform, else the
   * first entry).
   *
   * @param reference `registry/repository:tag` or `…@digest`, or a parsed `Reference`.
   * @param options `resolveIndex: false` to get an index itself; an abort signal.
   * @returns The manifest, its digest and exact bytes, and the index it was chosen from.
   */
  getManifest(
    reference: RepositoryRef,
    options?: GetManifestOptions & { resolveIndex?: true },
  ): Promise<ManifestResult<ImageManifest>>;
  getManifest(reference: RepositoryRef, options: GetManifestOptions): Promise<ManifestResult>;
  getManifest(reference: RepositoryRef, options: GetManifestOptions = {}): Promise<ManifestResult> {
    return getManifest(this.#api, this.#policy, reference, options);
  }

  /** Asks whether a manifest exists and returns its descriptor, without downloading it; undefined when absent. */
  headManifest(reference: RepositoryRef, options: RequestOptions = {}): Promise<Descriptor | undefined> {
    return headManifest(this.#api, reference, options);
  }

  /**
   * Uploads a manifest under the reference's tag (or digest) and returns its digest.
   *
   * @param bytes The manifest's exact bytes (what its digest is of).
   * @param mediaType Sent as `Content-Type`: the manifest's `mediaType`.
   */
  putManifest(
    reference: RepositoryRef,
    bytes: Uint8Array,
    mediaType: string,
    options: RequestOptions = {},
  ): Promise<string> {
    return putManifest(this.#api, reference, bytes, mediaType, options);
  }

  /**
   * Streams a blob, verified: the stream errors with `SIZE_MISMATCH` as soon as it runs past the
   * descriptor's size or ends short, and with `DIGEST_MISMATCH` at the end. With `offset` it asks
   * only for the rest (`Range`) and continues the hash from `hasher` or a re-hash of `prefix`.
   *
   * @param repository The repository (a reference's tag or digest is ignored).
   * @param descriptor The blob's digest and size, which the stream is verified against.
   * @returns The blob's bytes from `offset` (default 0) to the end.
   */
  fetchBlob(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest" | "size">,
    options: FetchBlobOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    return fetchBlob(this.#api, repository, descriptor, options);
  }

  /**
   * Raw bytes `[offset, offset + length)` of a blob, not verified (a store verifies what it ingests,
   * a tensor reader checks what it parses). `Range` is sent; a server that ignores it is handled.
   *
   * @param options `offset` (default 0) and `length` (default: to the end).
   */
  fetchBlobRange(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest" | "size">,
    options: RequestOptions & { offset?: number; length?: number } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    return fetchBlobRange(this.#api, repository, descriptor, {
      ranges: this.#rangesFor(repository),
      ...options,
    });
  }

  /**
   * Raw bytes of several spans of a blob (sorted, apart, inside it), not verified, as pieces at
   * their offsets in the order they arrive: range requests side by side as `ranges` says, for a
   * store to write where they belong (a resumed download asks for its holes).
   */
  fetchBlobSpans(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest" | "size">,
    spans: readonly Span[],
    options: RequestOptions = {},
  ): Promise<ReadableStream<BlobPiece>> {
    return fetchBlobSpans(this.#api, repository, descriptor, spans, {
      ranges: this.#rangesFor(repository),
      ...options,
    });
  }

  /** Whether the registry has a blob (HEAD). */
  blobExists(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest">,
    options: RequestOptions = {},
  ): Promise<boolean> {
    return blobExists(this.#api, repository, descriptor, options);
  }

  /**
   * Uploads a blob unless the registry has it: in one request for bytes or a `Blob`; a stream PATCH
   * by PATCH (see `chunkSize`); a function giving the bytes from an offset PATCH by PATCH, resuming a
   * cut upload where the registry says it got to. The registry checks the digest; a mismatch is `DIGEST_MISMATCH`.
   *
   * @param descriptor The digest and size the content must have.
   * @returns True when it was uploaded, false when the blob was already there.
   */
  pushBlob(
    repository: RepositoryRef,
    descriptor: Pick<Descriptor, "digest" | "size">,
    content: BlobContent,
    options: PushBlobOptions = {},
  ): Promise<boolean> {
    return pushBlob(this.#api, repository, descriptor, content, options);
  }

  /**
   * Asks the registry to link a blob from another repository on the same registry (no upload).
   *
   * @param repository The repository to link the blob into.
   * @param from The repository path that has it (`acme/base-model`), on the same registry.
   * @returns True when mounted, false when the registry declined (the caller then pushes the bytes).
   */
  mountBlob(
    repository: RepositoryRef,
    from: string,
    descriptor: Pick<Descriptor, "digest">,
    options: RequestOptions = {},
  ): Promise<boolean> {
    return mountBlob(this.#api, repository, from, descriptor, options);
  }

  /** All tags of a repository, following `Link` pagination. */
  listTags(
    repository: RepositoryRef,
    options: RequestOptions & { pageSize?: number } = {},
  ): Promise<string[]> {
    return listTags(this.#api, repository, options);
  }
}
