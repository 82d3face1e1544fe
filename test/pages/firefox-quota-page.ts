// A page for the Firefox quota test: pushes a blob larger than the origin's quota into a store with
// the up-front estimate turned off, so the browser's own failure is met half-way through the writes.
import {
  createCacheStore,
  createIdbStore,
  createOpfsStore,
  type OciError,
  type StoreOptions,
} from "../../src/index.js";
import { blobOf, chunked } from "../support/blobs.js";

declare global {
  interface Window {
    overfill(kind: "opfs" | "idb" | "cache", size: number): Promise<Record<string, unknown>>;
  }
}

window.overfill = async (kind, size) => {
  const options: StoreOptions = { chunkSize: 1024 * 1024, estimate: async () => undefined };
  const name = `quota-${kind}`;
  const store =
    kind === "opfs"
      ? createOpfsStore(name, options)
      : kind === "idb"
        ? createIdbStore(name, options)
        : createCacheStore(name, options);
  const { bytes, descriptor } = await blobOf(size);
  try {
    await store.push(descriptor, chunked(bytes, { chunk: 1024 * 1024 }));
    return { pushed: true };
  } catch (error) {
    const cause = (error as { cause?: { name?: string; message?: string } }).cause;
    return {
      code: (error as OciError).code,
      message: (error as Error).message,
      cause: cause ? `${cause.name}: ${cause.message}` : String(cause),
      listed: (await store.list()).length,
    };
  }
};
