import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createMemoryStore,
  createRemoteStore,
  createStore,
  OciError,
  type StoreBackend,
} from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { blobOf, chunked, concat, countingSource, equal } from "../support/blobs.js";
import { failure } from "../support/failure.js";

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

  it("writes chunks of exactly chunkSize, filling again the buffers the backend gives back", async () => {
    const writes: { at: number; bytes: Uint8Array; buffer: ArrayBufferLike }[] = [];
    const backend = fullBackend(Number.MAX_SAFE_INTEGER);
    backend.ingestWrite = async (_, at, bytes, recycle) => {
      writes.push({ at, bytes: bytes.slice(), buffer: bytes.buffer });
      recycle?.(bytes);
    };
    const store = createStore(backend, { chunkSize: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(5 * 64 * 1024 + 123);
    // Source chunks that straddle the chunk boundaries.
    await store.push(descriptor, chunked(bytes, { chunk: 40_000 }));
    expect(writes.map((w) => [w.at, w.bytes.byteLength])).toEqual([
      ...[0, 1, 2, 3, 4].map((i) => [i * 64 * 1024, 64 * 1024]),
      [5 * 64 * 1024, 123],
    ]);
    for (const w of writes) expect(w.bytes).toEqual(bytes.subarray(w.at, w.at + w.bytes.byteLength));
    // One buffer went round for every full chunk: the backend gave each back once written.
    expect(new Set(writes.slice(0, 5).map((w) => w.buffer)).size).toBe(1);
    expect(backend.committed).toEqual([descriptor.digest]);
  });

  it("never hands the backend a buffer it did not give back, nor the source's own chunk", async () => {
    const given: ArrayBufferLike[] = [];
    const backend = fullBackend(Number.MAX_SAFE_INTEGER);
    backend.ingestWrite = async (_, __, bytes) => void given.push(bytes.buffer);
    const store = createStore(backend, { chunkSize: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(3 * 64 * 1024);
    const sent: ArrayBufferLike[] = [];
    const source = chunked(bytes, { chunk: 64 * 1024 }).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, controller) => {
          sent.push(chunk.buffer);
          controller.enqueue(chunk);
        },
      }),
    );
    await store.push(descriptor, source);
    expect(new Set(given).size).toBe(3);
    for (const buffer of sent) expect(given).not.toContain(buffer);
  });

  it("records nothing more once the hasher failed: no checkpoint may cover bytes it did not hash", async () => {
    const writes: [number, number][] = [];
    const checkpoints: number[] = [];
    const backend = fullBackend(Number.MAX_SAFE_INTEGER);
    backend.ingestWrite = async (_, at, bytes) => void writes.push([at, bytes.byteLength]);
    backend.ingestCheckpoint = async (_, state) => void checkpoints.push(state.offset);
    let updates = 0;
    const store = createStore(backend, {
      chunkSize: 1000,
      checkpointBytes: 1000,
      createHasher: async () => ({
        update: () => {
          if (++updates === 3) throw new Error("hasher broke (test)");
        },
        digest: async () => "",
      }),
    });
    const { bytes, descriptor } = await blobOf(3500);
    await expect(store.push(descriptor, chunked(bytes, { chunk: 2500 }))).rejects.toThrow(/hasher broke/);
    expect(writes).toEqual([
      [0, 1000],
      [1000, 1000],
    ]);
    expect(Math.max(...checkpoints)).toBeLessThanOrEqual(2000);
  });

  it("reports a write that fails while the source is slow as the push's error, not an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const backend = fullBackend(64 * 1024); // the second write fails
      const store = createStore(backend, { chunkSize: 64 * 1024 });
      const { bytes, descriptor } = await blobOf(4 * 64 * 1024);
      const inner = chunked(bytes, { chunk: 64 * 1024 }).getReader();
      const slow = new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 30));
          const { done, value } = await inner.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
      });
      await expect(store.push(descriptor, slow)).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("reports a failing disk as STORAGE naming the store and the failure, not as a network error", async () => {
    const backend = fullBackend(Number.MAX_SAFE_INTEGER);
    backend.ingestWrite = async () => {
      throw Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
    };
    const store = createStore(backend, { chunkSize: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(200_000);
    await expect(store.push(descriptor, chunked(bytes))).rejects.toMatchObject({
      code: "STORAGE",
      message: expect.stringMatching(/^Cannot write sha256:[0-9a-f]{64} in full: the storage failed \(EIO/),
    });
    expect(backend.committed).toEqual([]);
  });

  it("reports a stored blob that cannot be read back as STORAGE", async () => {
    const backend = fullBackend(Number.MAX_SAFE_INTEGER);
    const { bytes, descriptor } = await blobOf(1000);
    backend.read = async () =>
      new ReadableStream<Uint8Array>({
        pull: (controller) =>
          controller.error(new DOMException("A requested file could not be read", "NotReadableError")),
      });
    const store = createStore(backend, { chunkSize: 64 * 1024 });
    await store.push(descriptor, chunked(bytes));
    const stream = await store.fetch(descriptor);
    await expect(new Response(stream).arrayBuffer()).rejects.toMatchObject({
      code: "STORAGE",
      message: expect.stringMatching(/^Cannot read sha256:.* in full: the storage failed \(A requested file/),
    });
  });

  it("reports a hasher that fails as STORAGE", async () => {
    const store = createStore(fullBackend(Number.MAX_SAFE_INTEGER), {
      createHasher: async () => {
        throw new Error("WebAssembly.instantiate(): Out of memory (test)");
      },
    });
    const { bytes, descriptor } = await blobOf(10);
    await expect(store.push(descriptor, chunked(bytes))).rejects.toMatchObject({
      code: "STORAGE",
      message: expect.stringMatching(/the hasher failed \(WebAssembly/),
    });
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

describe("a push's tap (PushOptions.tap)", () => {
  it.each([
    ["memory", () => createMemoryStore({ chunkSize: 64 * 1024 })],
    ["fs", () => createFsStore(mkdtempSync(join(tmpdir(), "oml-tap-")), { chunkSize: 64 * 1024 })],
  ])("sees every byte in order, as it is hashed (%s store)", async (_, make) => {
    const store = make();
    const { bytes, descriptor } = await blobOf(300_001);
    const seen: Uint8Array[] = [];
    await store.push(descriptor, chunked(bytes, { chunk: 40_000 }), {
      tap: (b) => void seen.push(b.slice()),
    });
    expect(equal(concat(...seen), bytes)).toBe(true);
  });

  it("a resumed push replays the stored prefix to the tap first, then the rest", async () => {
    const store = createMemoryStore({ chunkSize: 64 * 1024, checkpointBytes: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(400_000);
    const cut = countingSource(bytes, 200_000).source;
    expect((await failure(store.push(descriptor, cut))).code).toBe("NETWORK");
    const seen: Uint8Array[] = [];
    const result = await store.push(descriptor, async (offset) => chunked(bytes.subarray(offset)), {
      tap: (b) => void seen.push(b.slice()),
    });
    expect(result.resumedFrom).toBeGreaterThan(0);
    expect(result.fetched).toBe(bytes.byteLength - result.resumedFrom);
    expect(concat(...seen)).toEqual(bytes);
  });

  it("a tap that refuses the blob's own bytes fails the push with its error; nothing is kept", async () => {
    const store = createMemoryStore({ chunkSize: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(300_000);
    let calls = 0;
    const refuse = new OciError("UNSAFE_ARCHIVE", "Cannot extract it: no");
    const error = await failure(
      store.push(descriptor, chunked(bytes), {
        tap: () => {
          if (++calls === 2) throw refuse;
        },
      }),
    );
    expect(error).toBe(refuse);
    expect(calls).toBe(2); // not fed again once it threw
    expect(await store.exists(descriptor)).toBe(false);
    expect((await store.usage()).ingestBytes).toBe(0);
  });

  it("a tap that refused bytes which were not the blob's: DIGEST_MISMATCH, as without a tap", async () => {
    const store = createMemoryStore({ chunkSize: 64 * 1024 });
    const { bytes, descriptor } = await blobOf(300_000);
    const wrong = bytes.slice();
    wrong[1000] = (wrong[1000] as number) ^ 1;
    const error = await failure(
      store.push(descriptor, chunked(wrong), {
        tap: () => {
          throw new OciError("UNSAFE_ARCHIVE", "Cannot extract it: no");
        },
      }),
    );
    expect(error.code).toBe("DIGEST_MISMATCH");
  });

  it("is not called for a blob the store has; a registry refuses one", async () => {
    const store = createMemoryStore();
    const { bytes, descriptor } = await blobOf(1000);
    await store.push(descriptor, chunked(bytes));
    let calls = 0;
    const again = await store.push(descriptor, chunked(bytes), { tap: () => void calls++ });
    expect([again.existed, calls]).toEqual([true, 0]);
    const remote = createRemoteStore("registry.test/ns/model:v1", {
      fetch: (async () => new Response("", { status: 500 })) as typeof fetch,
    });
    const error = await failure(remote.push(descriptor, chunked(bytes), { tap: () => {} }));
    expect(error.code).toBe("INVALID_ARGUMENT");
  });
});
