import { OciError } from "../errors.js";
import { type Descriptor, isIndex, parseManifest } from "../oci/manifest.js";
import { parseReference, type Reference } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import type { Store } from "../store/types.js";

/** Options of `pushModel`: those of the registry client, or a client to reuse, and how to upload. */
export interface PushModelOptions extends RegistryClientOptions {
  /** A client to reuse (its options win over the ones given here). */
  client?: RegistryClient;
  /** A repository on the same registry that may already hold the blobs: they are mounted, not uploaded. */
  mountFrom?: string;
  /**
   * Bytes per PATCH for large blobs (lower it for registries that cap request bodies). Default
   * 64 MiB streamed pieces in Node, 8 MiB buffered pieces in browsers.
   */
  chunkSize?: number;
  signal?: AbortSignal;
  /** Called as each blob is sent, mounted (`skipped`) or found present. */
  onProgress?: (event: { digest: string; bytes: number; total: number; skipped: boolean }) => void;
}

/** What `pushModel` did. */
export interface PushModelResult {
  /** Digest of the manifest pushed. */
  digest: string;
  /** Blobs uploaded, mounted, and already present. */
  uploaded: number;
  mounted: number;
  skipped: number;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;

/**
 * Pushes a manifest graph from a store to a registry: children first, blobs the registry has are
 * skipped (`HEAD`), mounted from `mountFrom` where possible, small ones sent in one request and large
 * ones in chunks; the manifest last, under the reference's tag (or digest).
 *
 * @param store The store holding the manifest graph (as `packModel` or `pullModel` left it).
 * @param source A name (tag) in the store, or the manifest's descriptor.
 * @param reference Where to push: `registry/repository:tag` (or `@digest`).
 * @param options Credentials and the rest of the registry client's options, mounting, progress.
 * @returns The manifest's digest and what was uploaded, mounted or skipped.
 *
 * @example
 * ```ts
 * await pushModel(store, "v1", "ghcr.io/acme/tiny-llm:v1", { credentials });
 * ```
 */
export async function pushModel(
  store: Store,
  source: string | Descriptor,
  reference: string | Reference,
  options: PushModelOptions = {},
): Promise<PushModelResult> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const client = options.client ?? createRegistryClient(options);
  const root = typeof source === "string" ? await store.resolve(source) : source;
  if (!root) throw new OciError("NOT_FOUND", `Cannot push ${source}: the store has no such name`);
  // Small blobs go in one request as bytes; larger ones are streamed (see `chunkSize`).
  const smallBlob = options.chunkSize ?? DEFAULT_CHUNK;
  const signal = options.signal ? { signal: options.signal } : {};
  const result: PushModelResult = { digest: root.digest, uploaded: 0, mounted: 0, skipped: 0 };
  const done = new Set<string>();

  const pushBlob = async (blob: Descriptor) => {
    if (done.has(blob.digest)) return;
    done.add(blob.digest);
    if (options.mountFrom && (await client.mountBlob(ref, options.mountFrom, blob, signal))) {
      result.mounted++;
      options.onProgress?.({ digest: blob.digest, bytes: blob.size, total: blob.size, skipped: true });
      return;
    }
    const content =
      blob.size <= smallBlob
        ? new Uint8Array(await new Response(await store.fetch(blob)).arrayBuffer())
        : await store.fetch(blob);
    const sent = await client.pushBlob(ref, blob, content, {
      ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
      ...signal,
      onProgress: (bytes) =>
        options.onProgress?.({ digest: blob.digest, bytes, total: blob.size, skipped: false }),
    });
    if (sent) result.uploaded++;
    else {
      result.skipped++;
      options.onProgress?.({ digest: blob.digest, bytes: blob.size, total: blob.size, skipped: true });
    }
  };

  const pushManifest = async (descriptor: Descriptor, tagged: boolean) => {
    const bytes = new Uint8Array(await new Response(await store.fetch(descriptor)).arrayBuffer());
    const manifest = parseManifest(bytes, descriptor.mediaType, descriptor.digest);
    if (isIndex(manifest)) {
      for (const child of manifest.manifests) await pushManifest(child, false);
    } else {
      await pushBlob(manifest.config);
      for (const layer of manifest.layers) await pushBlob(layer);
    }
    const target = tagged ? ref : parseReference(`${ref.registry}/${ref.repository}@${descriptor.digest}`);
    await client.putManifest(target, bytes, manifest.mediaType, signal);
  };

  await pushManifest(root, true);
  return result;
}
