import { describe, expect, it } from "vitest";
import { createStore, type OciError, type StoreBackend } from "../../src/index.js";
import { blobOf, chunked } from "../support/blobs.js";

/** A backend whose storage fills up after `room` bytes, as browsers do with QuotaExceededError. */
function fullBackend(room: number): StoreBackend & { id: string; committed: string[] } {
  let used = 0;
  const committed: string[] = [];
  const empty = async () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return {
    id: "full",
    committed,
    has: async (digest) => committed.includes(digest),
    read: empty,
    remove: async () => {},
    blobs: async () => [],
    ingestState: async () => undefined,
    ingestWrite: async (_, __, bytes) => {
      used += bytes.byteLength;
      if (used > room) throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    },
    ingestCheckpoint: async () => {},
    ingestRead: empty,
    ingestCommit: async (digest) => void committed.push(digest),
    ingestDiscard: async () => {},
    ingests: async () => [],
    readTags: async () => new Map(),
    writeTags: async () => {},
    estimate: async () => undefined,
  };
}

describe("store engine", () => {
  it("maps a QuotaExceededError during a write to QUOTA_EXCEEDED and commits nothing", async () => {
    const backend = fullBackend(100_000);
    const store = createStore(backend, { chunkSize: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(300_000);
    let error: OciError | undefined;
    try {
      await store.push(descriptor, chunked(bytes));
    } catch (e) {
      error = e as OciError;
    }
    expect(error?.code).toBe("QUOTA_EXCEEDED");
    expect(error?.message).toMatch(/storage is full/);
    expect(backend.committed).toEqual([]);
  });

  it("refuses a size that is not a byte count", async () => {
    const store = createStore(fullBackend(10));
    await expect(
      store.push({ digest: `sha256:${"0".repeat(64)}`, size: -1 }, chunked(new Uint8Array())),
    ).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
  });
});
