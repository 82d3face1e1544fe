import { OciError } from "../errors.js";
import type { Descriptor } from "../oci/manifest.js";
import { parseReference, type Reference } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import { createRemoteStore } from "../registry/remote-store.js";
import { copyGraph } from "../store/graph.js";
import type { Store } from "../store/types.js";
import { namedManifest } from "./record.js";

/** Options of `pushModel`: those of the registry client (or a client to reuse), and how to upload. */
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
  /** Blobs uploaded at a time. Default 4. */
  concurrency?: number;
  /** Aborts the push; blobs already uploaded are skipped by the next push. */
  signal?: AbortSignal;
  /**
   * Called as each blob's bytes go up (`bytes` of `total`), and once for a blob the registry had
   * or mounted (`skipped: true`, `bytes === total`).
   */
  onProgress?: (event: { digest: string; bytes: number; total: number; skipped: boolean }) => void;
}

/** What `pushModel` did. */
export interface PushModelResult {
  /** The digest of the root manifest pushed. */
  digest: string;
  /** Blobs uploaded. */
  uploaded: number;
  /** Blobs mounted from `mountFrom`. */
  mounted: number;
  /** Blobs the registry already had. */
  skipped: number;
}

/**
 * Pushes a manifest graph from a store to a registry (`copyGraph` into the repository as a store):
 * blobs `concurrency` at a time, those the registry has skipped (`HEAD`), mounted from `mountFrom`
 * where possible, small ones sent in one request and large ones in pieces, a cut upload resumed
 * where the registry says it got to; each manifest after what it points at; the root last, under
 * the reference's tag (or by its digest).
 *
 * @param store The store holding the model.
 * @param source The name (tag) of the model in `store` — a name `packModel` tagged, or a reference
 *   `pullModel` pulled (its model manifest is pushed, not the store's record of it) — or its root
 *   manifest's descriptor.
 * @param reference Where to push: `registry/repository:tag`, or by digest.
 * @returns The root digest, and how many blobs were uploaded, mounted or skipped.
 * @throws {OciError} `NOT_FOUND` when `store` has no such name, or lacks a blob of the graph (a pull
 *   drops a compressed layer once its files are stored, unless asked to keep it).
 *
 * @example
 * ```ts
 * declare const store: Store; // holds the model under the tag "v1" (packModel, pullModel…)
 * declare const token: string;
 * await pushModel(store, "v1", "ghcr.io/acme/tiny-llm:v1", {
 *   credentials: { "ghcr.io": { username: "acme", password: token } },
 * });
 * ```
 */
export async function pushModel(
  store: Store,
  source: string | Descriptor,
  reference: string | Reference,
  options: PushModelOptions = {},
): Promise<PushModelResult> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const named = typeof source === "string" ? await store.resolve(source) : source;
  if (!named) throw new OciError("NOT_FOUND", `Cannot push ${source}: the store has no such name`);
  // A pulled model's name points at its record: what is pushed is the model's manifest.
  const root = await namedManifest(store, named);
  const remote = createRemoteStore(ref, {
    client: options.client ?? createRegistryClient(options),
    ...(options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom }),
    ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
    ...(ref.tag && !ref.digest ? { tags: { [root.digest]: ref.tag } } : {}),
  });
  const result: PushModelResult = { digest: root.digest, uploaded: 0, mounted: 0, skipped: 0 };
  await copyGraph(store, remote, root, {
    configFirst: false,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (event) => {
      const { digest, size } = event.descriptor;
      if (event.type === "progress") {
        options.onProgress?.({ digest, bytes: event.bytes, total: size, skipped: false });
      } else if (event.type === "done") {
        const { existed, mounted } = event.result;
        if (mounted) result.mounted++;
        else if (existed) result.skipped++;
        else result.uploaded++;
        if (existed || mounted) options.onProgress?.({ digest, bytes: size, total: size, skipped: true });
      }
    },
  }).catch((error: unknown) => {
    if (!(error instanceof OciError) || error.code !== "NOT_FOUND") throw error;
    throw new OciError(
      "NOT_FOUND",
      `Cannot push ${source} to ${ref}: ${error.message.replace(/^Cannot /, "it cannot ")}; a pull drops a compressed layer once its files are stored (pull with keepArchives, or oci-model pull --keep-archives, to push the model again)`,
      { cause: error },
    );
  });
  return result;
}
