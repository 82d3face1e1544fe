import { OciError } from "../errors.js";
import { type Descriptor, MANIFEST_SIZE_LIMIT } from "../oci/manifest.js";
import { parseReference, type Reference, withDigest } from "../reference.js";
import { isManifestDescriptor } from "../store/graph.js";
import { type OrderedSource, orderedSource } from "../store/source.js";
import type { BlobRef, FetchOptions, PushOptions, PushResult, Span, WritableStore } from "../store/types.js";
import { readAtMost } from "../streams.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "./client.js";

/** Options of `createRemoteStore`: those of the registry client (or a client to reuse), and how to upload. */
export interface RemoteStoreOptions extends RegistryClientOptions {
  /** A client to reuse instead of making one from the options. */
  client?: RegistryClient;
  /** A repository on the same registry that may already hold the blobs: they are mounted, not uploaded. */
  mountFrom?: string;
  /**
   * Bytes per PATCH for large blobs (lower it for registries that cap request bodies); blobs up to
   * this size go in one request. Default 64 MiB streamed pieces in Node, 8 MiB buffered pieces in browsers.
   */
  chunkSize?: number;
  /**
   * Manifests to put under a tag rather than by digest, as `{ digest: tag }`: the root of a push
   * goes up under its tag in one request (as docker and skopeo push), not by digest and then again
   * by tag. The registry then knows it by both.
   */
  tags?: Record<string, string>;
}

/** Blobs up to this size are sent in one request when no `chunkSize` is given. */
const ONE_REQUEST = 8 * 1024 * 1024;

/**
 * A registry repository as a store that graphs are copied from and to (`copyGraph`): manifests and
 * indexes by `/manifests/`, everything else by `/blobs/`. Reads of a whole blob or manifest are
 * verified by the client; a ranged read gives the raw bytes (the receiving store verifies). A push
 * uploads (resuming a cut upload where the registry says it got to), a tag puts the manifest under
 * the name. A registry has no listing, delete or gc here.
 *
 * @param repository The repository, `registry/repository` (a tag or digest in it is ignored).
 * @param options How to reach the registry, or a client to reuse; `mountFrom` and `chunkSize` for pushes.
 * @returns The repository as a store: `resolve` a tag, `fetch` blobs, and `push`/`tag` to upload.
 */
export function createRemoteStore(
  repository: string | Reference,
  options: RemoteStoreOptions = {},
): WritableStore {
  const ref = typeof repository === "string" ? parseReference(repository) : repository;
  const client = options.client ?? createRegistryClient(options);
  /** Manifests this store pushed, so tagging one needs no download. */
  const pushedManifests = new Map<string, Uint8Array>();

  const manifestBytes = async (descriptor: Descriptor, signal?: AbortSignal): Promise<Uint8Array> => {
    const known = pushedManifests.get(descriptor.digest);
    if (known) return known;
    const fetched = await client.getManifest(withDigest(ref, descriptor.digest), {
      resolveIndex: false,
      ...(signal ? { signal } : {}),
    });
    return fetched.bytes;
  };

  const pushManifest = async (blob: BlobRef, source: OrderedSource, pushOptions: PushOptions) => {
    const { signal } = pushOptions;
    const stream = typeof source === "function" ? await source(0) : source;
    const bytes = await readAtMost(stream, MANIFEST_SIZE_LIMIT);
    const action = `push manifest ${blob.digest} to ${ref.registry}/${ref.repository}`;
    if (!bytes || bytes.byteLength !== blob.size) {
      throw new OciError(
        "SIZE_MISMATCH",
        `Cannot ${action}: the content is not the descriptor's ${blob.size} bytes`,
      );
    }
    const tag =
      options.tags && Object.hasOwn(options.tags, blob.digest) ? options.tags[blob.digest] : undefined;
    const digest = await client.putManifest(
      tag === undefined
        ? withDigest(ref, blob.digest)
        : parseReference(`${ref.registry}/${ref.repository}:${tag}`),
      bytes,
      blob.mediaType as string,
      signal ? { signal } : {},
    );
    if (digest !== blob.digest) {
      throw new OciError("DIGEST_MISMATCH", `Cannot ${action}: the content hashes to ${digest}`);
    }
    pushedManifests.set(blob.digest, bytes);
    pushOptions.onProgress?.(blob.size, blob.size);
    return { existed: false, resumedFrom: 0, fetched: blob.size };
  };

  const pushBlob = async (
    blob: BlobRef,
    source: OrderedSource,
    pushOptions: PushOptions,
  ): Promise<PushResult> => {
    const { signal, onProgress } = pushOptions;
    const withSignal = signal ? { signal } : {};
    if (options.mountFrom && (await client.mountBlob(ref, options.mountFrom, blob, withSignal))) {
      if (source instanceof ReadableStream) await source.cancel().catch(() => {});
      onProgress?.(blob.size, blob.size);
      return { existed: false, mounted: true, resumedFrom: 0, fetched: 0 };
    }
    let fetched = 0;
    const counted = (stream: ReadableStream<Uint8Array>) =>
      stream.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            fetched += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
      );
    const from = (offset: number) =>
      typeof source === "function" ? source(offset).then(counted) : Promise.resolve(counted(source));
    let resumedFrom = 0;
    const small = blob.size <= (options.chunkSize ?? ONE_REQUEST);
    const content = small
      ? new Uint8Array(await new Response(await from(0)).arrayBuffer())
      : typeof source === "function"
        ? (offset: number) => {
            resumedFrom = offset;
            return from(offset);
          }
        : await from(0);
    const uploaded = await client.pushBlob(ref, blob, content, {
      ...withSignal,
      ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
      ...(onProgress ? { onProgress: (bytes: number) => onProgress(bytes, blob.size) } : {}),
    });
    if (!uploaded) {
      if (source instanceof ReadableStream) await source.cancel().catch(() => {});
      onProgress?.(blob.size, blob.size);
    }
    return { existed: !uploaded, resumedFrom, fetched };
  };

  return {
    exists: async (blob) =>
      isManifestDescriptor(blob)
        ? (await client.headManifest(withDigest(ref, blob.digest))) !== undefined
        : client.blobExists(ref, blob),
    fetch: async (blob: BlobRef, fetchOptions: FetchOptions = {}) => {
      const { signal } = fetchOptions;
      const whole = fetchOptions.offset === undefined && fetchOptions.length === undefined;
      if (whole && isManifestDescriptor(blob)) {
        const bytes = await manifestBytes(blob as Descriptor, signal);
        return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
      }
      if (whole) return client.fetchBlob(ref, blob, signal ? { signal } : {});
      return client.fetchBlobRange(ref, blob, {
        ...(signal ? { signal } : {}),
        ...(fetchOptions.offset === undefined ? {} : { offset: fetchOptions.offset }),
        ...(fetchOptions.length === undefined ? {} : { length: fetchOptions.length }),
      });
    },
    // Offered to a graph copy unless ranges are taken in order (`RangeOptions.atOffsets`) or not at all.
    ...(client.rangesAtOffsets(ref)
      ? {
          fetchSpans: (blob: BlobRef, spans: readonly Span[], fetchOptions: FetchOptions = {}) =>
            client.fetchBlobSpans(ref, blob, spans, fetchOptions),
        }
      : {}),
    resolve: async (name: string): Promise<Descriptor | undefined> => {
      const target = /^[a-z0-9]+:[0-9a-f]{32,}$/.test(name)
        ? withDigest(ref, name)
        : parseReference(`${ref.registry}/${ref.repository}:${name}`);
      return client.headManifest(target);
    },
    push: async (blob, given, pushOptions = {}) => {
      if (pushOptions.tap)
        throw new OciError("INVALID_ARGUMENT", `Cannot push ${blob.digest}: a registry takes no tap`);
      const source = orderedSource(given);
      return isManifestDescriptor(blob)
        ? pushManifest(blob, source, pushOptions)
        : pushBlob(blob, source, pushOptions);
    },
    tag: async (name, descriptor) => {
      const bytes = await manifestBytes(descriptor);
      await client.putManifest(
        parseReference(`${ref.registry}/${ref.repository}:${name}`),
        bytes,
        descriptor.mediaType,
      );
    },
  };
}
