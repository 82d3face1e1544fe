import type { Descriptor } from "../oci/manifest.js";
import { parseReference, type Reference, withDigest } from "../reference.js";
import type { BlobRef, FetchOptions, PushOptions, PushResult, ReadOnlyStore, Store } from "../store/types.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "./client.js";

/**
 * A registry repository as the read side of a store: `fetch` of a whole blob is verified by the
 * client; `fetch` with `offset` or `length` gives the raw range (the receiving store verifies).
 */
export function createRemoteStore(
  repository: string | Reference,
  options: RegistryClientOptions & { client?: RegistryClient } = {},
): ReadOnlyStore {
  const ref = typeof repository === "string" ? parseReference(repository) : repository;
  const client = options.client ?? createRegistryClient(options);
  return {
    exists: (blob) => client.blobExists(ref, blob),
    fetch: (blob: BlobRef, fetchOptions: FetchOptions = {}) => {
      const { signal } = fetchOptions;
      if (fetchOptions.offset === undefined && fetchOptions.length === undefined) {
        return client.fetchBlob(ref, blob, signal ? { signal } : {});
      }
      return client.fetchBlobRange(ref, blob, {
        ...(signal ? { signal } : {}),
        ...(fetchOptions.offset === undefined ? {} : { offset: fetchOptions.offset }),
        ...(fetchOptions.length === undefined ? {} : { length: fetchOptions.length }),
      });
    },
    resolve: async (name: string): Promise<Descriptor | undefined> => {
      const target = /^[a-z0-9]+:[0-9a-f]{32,}$/.test(name)
        ? withDigest(ref, name)
        : parseReference(`${ref.registry}/${ref.repository}:${name}`);
      return client.headManifest(target);
    },
  };
}

/**
 * Copies one blob between stores, verified once (by the receiving store), resuming an earlier
 * interrupted copy with a ranged read of the rest.
 */
export function copyBlob(
  source: ReadOnlyStore,
  target: Store,
  blob: BlobRef,
  options: PushOptions = {},
): Promise<PushResult> {
  const { signal } = options;
  return target.push(
    blob,
    (offset) => source.fetch(blob, { offset, length: blob.size - offset, ...(signal ? { signal } : {}) }),
    options,
  );
}
