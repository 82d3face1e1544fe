import { type CreateHasher, digestBytes } from "../digest/hasher.js";
import type { Descriptor } from "../oci/manifest.js";
import type { Store } from "./types.js";

/** Stores small in-memory content (a manifest, a config, a record) and returns its descriptor. */
export async function pushBytes(
  store: Store,
  bytes: Uint8Array,
  mediaType: string,
  createHasher: CreateHasher,
): Promise<Descriptor> {
  const descriptor = { mediaType, digest: await digestBytes(bytes, createHasher), size: bytes.byteLength };
  await store.push(descriptor, new Blob([bytes as Uint8Array<ArrayBuffer>]).stream());
  return descriptor;
}

/** Reads a small stored blob as JSON. */
export async function readJson<T>(store: Store, descriptor: Pick<Descriptor, "digest" | "size">): Promise<T> {
  return JSON.parse(await new Response(await store.fetch(descriptor)).text()) as T;
}
