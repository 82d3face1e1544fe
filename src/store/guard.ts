import { OciError } from "../errors.js";
import type { StoreBackend } from "./backend.js";

/**
 * Maps a failure of a storage medium (disk, OPFS, IndexedDB, Cache API) to an `OciError`:
 * `QUOTA_EXCEEDED` when it is full, `STORAGE` otherwise, the medium's own words kept.
 */
export function storageError(error: unknown, action: string): OciError {
  if (error instanceof OciError) return error;
  const { name, code } = (error ?? {}) as { name?: string; code?: string };
  // Firefox's Cache API rejects a put over the quota with its internal nsresult name.
  if (
    name === "QuotaExceededError" ||
    name === "NS_ERROR_FILE_NO_DEVICE_SPACE" ||
    code === "ENOSPC" ||
    code === "EDQUOT"
  ) {
    return new OciError(
      "QUOTA_EXCEEDED",
      `Cannot ${action}: the storage is full; free space or delete models`,
      {
        cause: error,
      },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new OciError("STORAGE", `Cannot ${action}: the storage failed (${detail})`, { cause: error });
}

/** What each backend method does, for the message ("Cannot <action> in <store>: …"). */
const ACTIONS: { [K in keyof StoreBackend]-?: (digest: string) => string } = {
  has: (d) => `look up ${d}`,
  read: (d) => `read ${d}`,
  blob: (d) => `read ${d}`,
  remove: (d) => `remove ${d}`,
  blobs: () => "list the blobs",
  ingestState: (d) => `read how far ${d} got`,
  ingestWrite: (d) => `write ${d}`,
  ingestWriteAt: (d) => `write ${d}`,
  ingestCheckpoint: (d) => `record how far ${d} got`,
  ingestRead: (d) => `read the partial ${d}`,
  ingestCommit: (d) => `commit ${d}`,
  ingestDiscard: (d) => `discard the partial ${d}`,
  ingestRelease: (d) => `close ${d}`,
  ingestWritten: (d) => `write ${d}`,
  ingests: () => "list the partial downloads",
  readTags: () => "read the tags",
  writeTags: () => "write the tags",
  estimate: () => "estimate the free space",
  acquire: (name) => `lock ${name}`,
  isLocked: (name) => `look up the lock of ${name}`,
};

/** A stream whose errors, when the medium fails half-way through a read, are `STORAGE` errors too. */
function guardStream(stream: ReadableStream<Uint8Array>, action: string): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(storageError(error, action));
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

/**
 * The backend as the engine sees it: every failure of the medium is an `OciError` that says which
 * store failed doing what (a full disk is `QUOTA_EXCEEDED`, anything else `STORAGE`), never one the
 * caller would read as a network error.
 */
export function guardBackend<B extends StoreBackend & { readonly id: string }>(backend: B): B {
  const guarded = Object.create(backend) as B;
  for (const method of Object.keys(ACTIONS) as (keyof StoreBackend)[]) {
    const original = backend[method] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof original !== "function") continue;
    const wrapped = async (...args: unknown[]) => {
      const action = `${ACTIONS[method](String(args[0]))} in ${backend.id}`;
      try {
        const result = await original.apply(backend, args);
        if (result instanceof ReadableStream) return guardStream(result, action);
        if (typeof result === "function") {
          // a lock's release
          return () =>
            (result as () => Promise<void>)().catch((error: unknown) => {
              throw storageError(error, `release the lock of ${String(args[0])} in ${backend.id}`);
            });
        }
        return result;
      } catch (error) {
        throw storageError(error, action);
      }
    };
    Object.defineProperty(guarded, method, { value: wrapped });
  }
  return guarded;
}
