// The store engine's ingest, driven over a backend double that records what it is asked, in the
// order its work completes: where a push resumes (and when it must not trust a resume point), which
// writes and checkpoints it makes, that nothing is committed unverified, and its progress reports.
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { createWasmHasher } from "../../src/digest/hashers.js";
import {
  type CreateHasher,
  createStore,
  type IngestState,
  OciError,
  type PushOptions,
  type StoreBackend,
} from "../../src/index.js";
import { blobOf, chunked, countingSource, equal, readAll } from "../support/blobs.js";
import { failure } from "../support/failure.js";

let backends = 0;

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return chunked(bytes, { chunk: 700 });
}

/**
 * A backend in memory that logs each write (`write <at>+<length>`), checkpoint, read of the partial,
 * commit, discard and release as it completes. With `delay`, writes and checkpoints take that many ms.
 */
function recordingBackend(options: { delay?: number } = {}) {
  const blobs = new Map<string, Uint8Array>();
  const ingests = new Map<string, { data: Uint8Array; state?: IngestState }>();
  const log: string[] = [];
  const wait = () => new Promise((resolve) => setTimeout(resolve, options.delay ?? 0));
  const backend: StoreBackend & { id: string } = {
    id: `recording-${++backends}`,
    has: async (digest) => blobs.has(digest),
    read: async (digest, offset, length) =>
      streamOf((blobs.get(digest) ?? new Uint8Array()).subarray(offset, offset + length)),
    remove: async (digest) => void blobs.delete(digest),
    blobs: async () => [...blobs].map(([digest, bytes]) => ({ digest, size: bytes.byteLength })),
    ingestState: async (digest) => ingests.get(digest)?.state,
    ingestWrite: async (digest, at, bytes) => {
      if (options.delay) await wait();
      const entry = ingests.get(digest) ?? { data: new Uint8Array() };
      if (at > entry.data.byteLength) {
        log.push(`write ${at}+${bytes.byteLength} refused: a hole before it`);
        throw new Error(`a hole before ${at}`);
      }
      const data = new Uint8Array(at + bytes.byteLength);
      data.set(entry.data.subarray(0, at));
      data.set(bytes, at);
      entry.data = data;
      ingests.set(digest, entry);
      log.push(`write ${at}+${bytes.byteLength}`);
    },
    ingestCheckpoint: async (digest, state) => {
      if (options.delay) await wait();
      const entry = ingests.get(digest);
      if (entry) entry.state = state;
      log.push(`checkpoint ${state.offset}`);
    },
    ingestRead: async (digest, offset, length) => {
      log.push(`read partial ${offset}+${length}`);
      return streamOf((ingests.get(digest)?.data ?? new Uint8Array()).subarray(offset, offset + length));
    },
    ingestCommit: async (digest, size) => {
      const entry = ingests.get(digest);
      if (entry?.data.byteLength !== size) throw new Error(`the partial holds not ${size} bytes`);
      blobs.set(digest, entry.data);
      ingests.delete(digest);
      log.push(`commit ${size}`);
    },
    ingestDiscard: async (digest) => {
      ingests.delete(digest);
      log.push("discard");
    },
    ingestRelease: async () => void log.push("release"),
    ingests: async () => [...ingests].flatMap(([digest, { state }]) => (state ? [{ digest, state }] : [])),
    readTags: async () => new Map(),
    writeTags: async () => {},
    estimate: async () => undefined,
  };
  return { backend, log, blobs, ingests };
}

/** The arguments of every `onProgress` call of a push. */
function progress(): { calls: [number, number][]; options: PushOptions } {
  const calls: [number, number][] = [];
  return { calls, options: { onProgress: (done, total) => calls.push([done, total]) } };
}

const small = { chunkSize: 1000, checkpointBytes: 2000 };

describe("store ingest: writes and checkpoints", () => {
  it("writes chunkSize pieces, checkpoints every checkpointBytes and once at the end, then commits", async () => {
    const { backend, log } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(5500);
    expect(await store.push(descriptor, chunked(bytes, { chunk: 700 }))).toEqual({
      existed: false,
      resumedFrom: 0,
      fetched: 5500,
    });
    expect(log).toEqual([
      "write 0+1000",
      "write 1000+1000",
      "checkpoint 2000",
      "write 2000+1000",
      "write 3000+1000",
      "checkpoint 4000",
      "write 4000+1000",
      "write 5000+500",
      "checkpoint 5500",
      "commit 5500",
      "release",
    ]);
  });

  it("writes no empty last piece and no second checkpoint when the blob ends on a checkpoint", async () => {
    const { backend, log } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(4000);
    await store.push(descriptor, chunked(bytes, { chunk: 1000 }));
    expect(log).toEqual([
      "write 0+1000",
      "write 1000+1000",
      "checkpoint 2000",
      "write 2000+1000",
      "write 3000+1000",
      "checkpoint 4000",
      "commit 4000",
      "release",
    ]);
  });

  it("commits only after the last write and checkpoint landed, however slow the backend", async () => {
    const { backend, log } = recordingBackend({ delay: 5 });
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(2500);
    await store.push(descriptor, chunked(bytes, { chunk: 2500 }));
    expect(log).toEqual([
      "write 0+1000",
      "write 1000+1000",
      "checkpoint 2000",
      "write 2000+500",
      "checkpoint 2500",
      "commit 2500",
      "release",
    ]);
  });

  it("keeps what arrived before a cut connection, checkpointed, and resumes from its end", async () => {
    const { backend, log } = recordingBackend({ delay: 5 });
    const store = createStore(backend, { ...small, createHasher: createWasmHasher });
    const { bytes, descriptor } = await blobOf(5000);
    const cut = countingSource(bytes, 2500);
    const error = await failure(store.push(descriptor, cut.source));
    expect(error).toMatchObject({ code: "NETWORK" });
    expect(error.message).toMatch(
      /^Cannot store sha256:[0-9a-f]{64}: the connection failed \(connection reset/,
    );
    // All of it landed before the push gave up: nothing still running under a released lock.
    expect(log).toEqual([
      "write 0+1000",
      "write 1000+1000",
      "checkpoint 2000",
      "write 2000+500",
      "checkpoint 2500",
      "release",
    ]);
    const rest = countingSource(bytes);
    const { calls, options } = progress();
    expect(await store.push(descriptor, rest.source, options)).toEqual({
      existed: false,
      resumedFrom: 2500,
      fetched: 2500,
    });
    expect(rest.calls).toEqual([2500]);
    expect(calls[0]).toEqual([2500, 5000]);
    expect(calls.at(-1)).toEqual([5000, 5000]);
    // The saved hasher state was loaded: the stored prefix was not read back.
    expect(log.filter((l) => l.startsWith("read partial"))).toEqual([]);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("reads the next piece while the last one is being written", async () => {
    const { backend } = recordingBackend();
    const write = backend.ingestWrite.bind(backend);
    let asked = 0;
    let secondAsked: () => void = () => {};
    const second = new Promise<void>((resolve) => {
      secondAsked = resolve;
    });
    // The first write finishes only once the engine has asked the source for the second piece.
    backend.ingestWrite = async (digest, at, bytes) => {
      if (at === 0) await second;
      return write(digest, at, bytes);
    };
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(3000);
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (++asked === 2) secondAsked();
          if (asked > 3) controller.close();
          else controller.enqueue(bytes.slice((asked - 1) * 1000, asked * 1000));
        },
      },
      { highWaterMark: 0 },
    );
    expect((await store.push(descriptor, source)).fetched).toBe(3000);
  });

  it("ends a push whose source fails with SIZE_MISMATCH only after its writes landed, adding none", async () => {
    const { backend, log } = recordingBackend({ delay: 5 });
    const store = createStore(backend, { chunkSize: 1000, checkpointBytes: 1000 });
    const { bytes, descriptor } = await blobOf(5000);
    let sent = 0;
    // Pieces of 700: when it fails, 100 bytes are cut from nothing yet.
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 2100) {
          controller.error(new OciError("SIZE_MISMATCH", "the server said otherwise (test)"));
          return;
        }
        controller.enqueue(bytes.slice(sent, sent + 700));
        sent += 700;
      },
    });
    const error = await failure(store.push(descriptor, source));
    const atFailure = [...log];
    expect(error.code).toBe("SIZE_MISMATCH");
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(atFailure).toEqual(log);
    expect(log).toEqual(["write 0+1000", "checkpoint 1000", "write 1000+1000", "checkpoint 2000", "release"]);
  });

  it("throws away what a source sent past the declared size, leaving no ingest to resume from", async () => {
    const { backend, log, ingests } = recordingBackend({ delay: 5 });
    const store = createStore(backend, { chunkSize: 1000, checkpointBytes: 1000 });
    const { bytes, descriptor } = await blobOf(2500);
    const longer = new Uint8Array(4000);
    longer.set(bytes);
    let cancelled = false;
    // Pieces of 700: at 2800 it is too long, with 100 bytes not written yet.
    const inner = chunked(longer, { chunk: 700 }).getReader();
    const source = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const { done, value } = await inner.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: () => {
        cancelled = true;
      },
    });
    const error = await failure(store.push(descriptor, source));
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(error.message).toMatch(
      /^Cannot store sha256:[0-9a-f]{64}: the source sent more than the declared 2500/,
    );
    expect(cancelled).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(log).toEqual([
      "write 0+1000",
      "checkpoint 1000",
      "write 1000+1000",
      "checkpoint 2000",
      "discard",
      "release",
    ]);
    expect(ingests.size).toBe(0);
  });

  it("reports a source that ends short as SIZE_MISMATCH and keeps its bytes for the next push", async () => {
    const { backend } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(3000);
    const error = await failure(store.push(descriptor, chunked(bytes.subarray(0, 1800))));
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(error.message).toMatch(
      /^Cannot store sha256:[0-9a-f]{64}: the source ended after 1800 of 3000 bytes; pushing again resumes/,
    );
    const rest = countingSource(bytes);
    expect((await store.push(descriptor, rest.source)).resumedFrom).toBe(1800);
    expect(rest.calls).toEqual([1800]);
  });

  it("writes nothing more after a write failed with QUOTA_EXCEEDED", async () => {
    const { backend, log } = recordingBackend();
    const write = backend.ingestWrite.bind(backend);
    backend.ingestWrite = async (digest, at, bytes) => {
      if (at < 2000) return write(digest, at, bytes);
      log.push(`write ${at}+${bytes.byteLength} failed`);
      throw new DOMException("full (test)", "QuotaExceededError");
    };
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(5000);
    expect((await failure(store.push(descriptor, chunked(bytes, { chunk: 1000 })))).code).toBe(
      "QUOTA_EXCEEDED",
    );
    expect(log).toEqual([
      "write 0+1000",
      "write 1000+1000",
      "checkpoint 2000",
      "write 2000+1000 failed",
      "release",
    ]);
  });

  it("refuses content whose digest does not match: discards it and commits nothing", async () => {
    const { backend, log, blobs, ingests } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(2500);
    const bad = bytes.slice();
    bad[2499] = (bad[2499] ?? 0) ^ 1;
    const error = await failure(store.push(descriptor, chunked(bad)));
    expect(error.code).toBe("DIGEST_MISMATCH");
    expect(error.message).toMatch(
      /^Cannot store sha256:[0-9a-f]{64}: the content hashes to sha256:[0-9a-f]{64}; nothing was stored$/,
    );
    expect(log.filter((l) => l.startsWith("commit"))).toEqual([]);
    expect(log.slice(-2)).toEqual(["discard", "release"]);
    expect(blobs.size).toBe(0);
    expect(ingests.size).toBe(0);
  });

  it("reports a hasher that fails at the end as STORAGE and commits nothing", async () => {
    const { backend, log } = recordingBackend();
    const store = createStore(backend, {
      ...small,
      createHasher: async () => ({
        update: () => {},
        digest: async () => {
          throw new Error("digest broke (test)");
        },
      }),
    });
    const { bytes, descriptor } = await blobOf(1500);
    const error = await failure(store.push(descriptor, chunked(bytes)));
    expect(error).toMatchObject({ code: "STORAGE" });
    expect(error.message).toMatch(/^Cannot store sha256:[0-9a-f]{64}: the hasher failed \(digest broke/);
    expect(log.filter((l) => l.startsWith("commit"))).toEqual([]);
  });

  it("lets go of the backend's resources after a push, whether it failed or not, even if that fails", async () => {
    const { backend, log } = recordingBackend();
    let releaseFails = false;
    backend.ingestRelease = async () => {
      log.push(releaseFails ? "release failed" : "release");
      if (releaseFails) throw new Error("close failed (test)");
    };
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(1500);
    await failure(store.push(descriptor, chunked(bytes, { failAt: 500 })));
    expect(log.at(-1)).toBe("release");
    releaseFails = true;
    expect((await store.push(descriptor, chunked(bytes))).resumedFrom).toBe(500);
    expect(log.at(-1)).toBe("release failed");
  });
});

describe("store ingest: where a push resumes", () => {
  /** A store over `backend` with a stored partial of `bytes`, `offset` long, checkpointed as `state`. */
  async function withPartial(size: number, offset: number, hasherState?: Uint8Array) {
    const rec = recordingBackend();
    const { bytes, descriptor } = await blobOf(size);
    await rec.backend.ingestWrite(descriptor.digest, 0, bytes.slice(0, Math.min(offset, size)));
    await rec.backend.ingestCheckpoint(descriptor.digest, {
      offset,
      updatedAt: Date.now(),
      ...(hasherState ? { hasherState } : {}),
    });
    rec.log.length = 0;
    return { ...rec, bytes, descriptor };
  }

  it("does not trust a resume point past the blob's size: discards the partial and starts over", async () => {
    const { backend, log, bytes, descriptor } = await withPartial(3000, 3001);
    const store = createStore(backend, { ...small, createHasher: createWasmHasher });
    const source = countingSource(bytes);
    expect(await store.push(descriptor, source.source)).toMatchObject({ resumedFrom: 0, fetched: 3000 });
    expect(source.calls).toEqual([0]);
    expect(log[0]).toBe("discard");
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("resumes a partial that holds the whole blob from its end, reading nothing more", async () => {
    const { backend, log, bytes, descriptor } = await withPartial(3000, 3000);
    const store = createStore(backend, small);
    const source = countingSource(bytes);
    expect(await store.push(descriptor, source.source)).toEqual({
      existed: false,
      resumedFrom: 3000,
      fetched: 0,
    });
    expect(source.served()).toBe(0);
    // No saved hasher state: the stored bytes were hashed again.
    expect(log).toEqual(["read partial 0+3000", "commit 3000", "release"]);
  });

  it("hashes the stored prefix again when the checkpoint has no hasher state", async () => {
    const { backend, log, bytes, descriptor } = await withPartial(3000, 1200);
    let loads = 0;
    // A hasher that could load a state, but none was saved (a checkpoint made by one that cannot).
    const createHasher: CreateHasher = async (algorithm) => {
      const inner = await createWasmHasher(algorithm);
      return {
        ...inner,
        load: (state) => {
          loads++;
          inner.load?.(state);
        },
      };
    };
    const store = createStore(backend, { ...small, createHasher });
    expect((await store.push(descriptor, countingSource(bytes).source)).resumedFrom).toBe(1200);
    expect(loads).toBe(0);
    expect(log[0]).toBe("read partial 0+1200");
  });

  it("hashes the stored prefix again when the saved state cannot be loaded", async () => {
    const { backend, log, bytes, descriptor } = await withPartial(3000, 1200, new Uint8Array([1, 2, 3]));
    const store = createStore(backend, { ...small, createHasher: createWasmHasher });
    expect((await store.push(descriptor, countingSource(bytes).source)).resumedFrom).toBe(1200);
    expect(log[0]).toBe("read partial 0+1200");
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("starts over from a checkpoint at offset 0 without reading the partial", async () => {
    const { backend, log, bytes, descriptor } = await withPartial(3000, 0);
    const store = createStore(backend, small);
    const source = countingSource(bytes);
    expect((await store.push(descriptor, source.source)).resumedFrom).toBe(0);
    expect(source.calls).toEqual([0]);
    expect(log.filter((l) => l.startsWith("read partial"))).toEqual([]);
  });

  it("reports a hasher that fails while re-hashing the stored prefix as STORAGE", async () => {
    const { backend, bytes, descriptor } = await withPartial(3000, 1200);
    const store = createStore(backend, {
      ...small,
      createHasher: async () => ({
        update: () => {
          throw new Error("update broke (test)");
        },
        digest: async () => "",
      }),
    });
    const source = countingSource(bytes);
    const error = await failure(store.push(descriptor, source.source));
    expect(error.code).toBe("STORAGE");
    expect(error.message).toMatch(/^Cannot store sha256:[0-9a-f]{64}: the hasher failed \(update broke/);
    expect(source.calls).toEqual([]);
  });

  it("drops the stored prefix from a stream source given from the start", async () => {
    const { backend, bytes, descriptor } = await withPartial(3000, 1200);
    const store = createStore(backend, small);
    expect(await store.push(descriptor, chunked(bytes, { chunk: 500 }))).toEqual({
      existed: false,
      resumedFrom: 1200,
      fetched: 1800,
    });
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });
});

describe("store ingest: progress, quota, abort", () => {
  it("reports progress from the resume point, after each piece the source sends, up to the size", async () => {
    const { backend } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(2000);
    const { calls, options } = progress();
    await store.push(descriptor, chunked(bytes, { chunk: 700 }), options);
    expect(calls).toEqual([
      [0, 2000],
      [700, 2000],
      [1400, 2000],
      [2000, 2000],
    ]);
    // Already stored: one report, all of it.
    const again = progress();
    await store.push(descriptor, chunked(bytes), again.options);
    expect(again.calls).toEqual([[2000, 2000]]);
  });

  it("asks for only the space still missing, and accepts a blob that fills the quota exactly", async () => {
    const { backend } = recordingBackend();
    let free = 0;
    backend.estimate = async () => ({ usage: 10_000 - free, quota: 10_000 });
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(3000);
    free = 3000;
    await failure(store.push(descriptor, countingSource(bytes, 1000).source));
    free = 2000;
    expect((await store.push(descriptor, countingSource(bytes).source)).resumedFrom).toBe(1000);

    const other = await blobOf(3000);
    free = 2999;
    const error = await failure(store.push(other.descriptor, chunked(other.bytes)));
    expect(error.code).toBe("QUOTA_EXCEEDED");
    expect(error.message).toBe(
      `Cannot store ${other.descriptor.digest}: it needs 0.0 MiB more but only 0.0 MiB of the 0.0 MiB quota is free; delete models or ask for persistent storage`,
    );
  });

  it("goes ahead when the free space cannot be estimated", async () => {
    const { backend } = recordingBackend();
    backend.estimate = async () => {
      throw new Error("no estimate (test)");
    };
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(1500);
    expect((await store.push(descriptor, chunked(bytes))).existed).toBe(false);
  });

  it("asks nothing of the source when aborted before it starts", async () => {
    const { backend } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(1500);
    const source = countingSource(bytes);
    const controller = new AbortController();
    controller.abort();
    const error = await failure(store.push(descriptor, source.source, { signal: controller.signal }));
    expect(error.code).toBe("ABORTED");
    expect(error.message).toMatch(/^Cannot store sha256:[0-9a-f]{64}: it was aborted$/);
    expect(source.calls).toEqual([]);
  });

  it("stops a push whose source stalls when aborted", async () => {
    const { backend } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(3000);
    let cancelled: unknown;
    let sent = false;
    const stalled = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) controller.enqueue(bytes.slice(0, 1500));
        sent = true;
        // and then nothing, ever
      },
      cancel: (reason) => {
        cancelled = reason;
      },
    });
    const controller = new AbortController();
    const pending = store.push(descriptor, stalled, {
      signal: controller.signal,
      onProgress: (n) => {
        if (n === 1500) setTimeout(() => controller.abort(), 5);
      },
    });
    expect((await failure(pending)).code).toBe("ABORTED");
    expect(cancelled).toBe(controller.signal.reason);
    expect((await backend.ingestState(descriptor.digest))?.offset).toBe(1500);
  });

  it("leaves no listener on the caller's signal, which may outlive many pushes", async () => {
    const { backend } = recordingBackend();
    const store = createStore(backend, small);
    const controller = new AbortController();
    const { bytes, descriptor } = await blobOf(1500);
    await store.push(descriptor, chunked(bytes), { signal: controller.signal });
    const other = await blobOf(1500);
    await failure(
      store.push(other.descriptor, chunked(other.bytes, { failAt: 700 }), { signal: controller.signal }),
    );
    expect(getEventListeners(controller.signal, "abort")).toEqual([]);
  });

  it("commits nothing when aborted as the last byte arrives", async () => {
    const { backend, log } = recordingBackend();
    const store = createStore(backend, small);
    const { bytes, descriptor } = await blobOf(1500);
    const controller = new AbortController();
    const error = await failure(
      store.push(descriptor, chunked(bytes, { chunk: 1500 }), {
        signal: controller.signal,
        onProgress: (n) => {
          if (n === 1500) controller.abort();
        },
      }),
    );
    expect(error.code).toBe("ABORTED");
    expect(log.filter((l) => l.startsWith("commit"))).toEqual([]);
  });

  it("maps a source that cannot be opened to an error naming the push", async () => {
    const { backend } = recordingBackend();
    const store = createStore(backend, small);
    const { descriptor } = await blobOf(1500);
    const error = await failure(
      store.push(descriptor, async () => {
        throw new TypeError("fetch failed (test)");
      }),
    );
    expect(error.code).toBe("NETWORK");
    expect(error.message).toMatch(/^Cannot store sha256:[0-9a-f]{64}: the connection failed \(fetch failed/);
  });

  it("names the push when refusing a size that is not a byte count", async () => {
    const store = createStore(recordingBackend().backend);
    const digest = `sha256:${"0".repeat(64)}`;
    await expect(store.push({ digest, size: 1.5 }, chunked(new Uint8Array()))).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: `Cannot store ${digest}: size 1.5 is not a byte count`,
    });
  });
});
