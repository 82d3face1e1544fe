import { parseReference, type Reference } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import { readAll } from "../streams.js";
import { isTensorFile } from "../tensors/files.js";
import { buildTensorIndex } from "../tensors/tensor-index.js";
import type { TensorEntry, TensorFile } from "../tensors/types.js";
import { planLayers } from "./layers.js";

/**
 * The tensor index of a model in a registry, from header bytes fetched with `Range`: no weights are
 * downloaded.
 *
 * @param reference The model in the registry.
 * @param options How to reach the registry (or a client to reuse), and an abort signal.
 * @returns Tensor name → file, dtype, shape, offset and length.
 */
export async function remoteTensorIndex(
  reference: string | Reference,
  options: RegistryClientOptions & { client?: RegistryClient; signal?: AbortSignal } = {},
): Promise<Map<string, TensorEntry>> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const client = options.client ?? createRegistryClient(options);
  const signal = options.signal ? { signal: options.signal } : {};
  const { manifest } = await client.getManifest(ref, signal);
  const files = planLayers(manifest)
    .filter((l) => !l.archive && l.path !== undefined && isTensorFile(l.path))
    .map(
      (l): TensorFile => ({
        path: l.path as string,
        size: l.descriptor.size,
        read: async (offset, length) =>
          readAll(await client.fetchBlobRange(ref, l.descriptor, { offset, length, ...signal })),
      }),
    );
  return buildTensorIndex(files);
}
