// The store engine's ingest of ranges that arrive side by side (src/store/ingest-spans.ts), over a
// sparse backend double whose records a test can forge or damage: what a resume trusts, what it
// reads back, and that the hasher and the tap see the blob in order.
import { describe, expect, it } from "vitest";
import { createWasmHasher } from "../../src/digest/hashers.js";
import { OciError } from "../../src/errors.js";
import {
  type CreateHasher,
  createStore,
  type IngestState,
  type Span,
  type StoreBackend,
} from "../../src/index.js";
import { ingestSpans, type SpansIngest } from "../../src/store/ingest-spans.js";
import { blobOf, chunked, countingSource, equal, readAll, spanSource } from "../support/blobs.js";
import { failure } from "../support/failure.js";

let backends = 0;

/**
 * A backend in memory that writes at any offset; `lose` drops bytes from what it reads back;
 * `giveBack` hands written chunks back for reuse (as the memory, fs, IndexedDB and OPFS backends do),
 * `"late"` only after the write resolved, `"queued"` two writes later or when the ingest is read (as
 * OPFS's worker, which writes behind a queue that a read waits for); `written` adds
 * `ingestWritten`, which waits for the queued writes (gives their chunks back) without a read, or
 * with `"keeps"` returns keeping them (as a write still in flight may).
 */
function sparseBackend(
  options: {
    giveBack?: boolean | "late" | "queued";
    inOrderOnly?: boolean;
    written?: boolean | "keeps";
  } = {},
) {
  const blobs = new Map<string, Uint8Array>();
  const ingests = new Map<string, { data: Uint8Array; state?: IngestState }>();
  const log: string[] = [];
  /** Chunks written and not given back yet (`giveBack: "queued"`). */
  const queued: (() => void)[] = [];
  /** Every checkpoint recorded, in order. */
  const states: IngestState[] = [];
  /** Bytes a read back loses from its end, or hands out past it. */
  const damage = { lose: 0, extra: 0 };
  /** Bytes read back that were taken from the streams `ingestRead` gave. */
  const taken = { bytes: 0 };
  const entry = (digest: string, size: number) => {
    const found = ingests.get(digest);
    if (found && found.data.byteLength >= size) return found;
    const data = new Uint8Array(size);
    if (found) data.set(found.data);
    const made = { data, ...(found?.state ? { state: found.state } : {}) };
    ingests.set(digest, made);
    return made;
  };
  const write = async (
    digest: string,
    at: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) => {
    entry(digest, at + bytes.byteLength).data.set(bytes, at);
    log.push(`write ${at}+${bytes.byteLength}`);
    if (options.giveBack === "late") setTimeout(() => recycle?.(bytes), 1);
    else if (options.giveBack === "queued") {
      queued.push(() => recycle?.(bytes));
      if (queued.length > 2) queued.shift()?.();
    } else if (options.giveBack) recycle?.(bytes);
  };
  const backend: StoreBackend & { id: string } = {
    id: `sparse-${++backends}`,
    has: async (digest) => blobs.has(digest),
    read: async (digest, offset, length) =>
      chunked((blobs.get(digest) ?? new Uint8Array()).subarray(offset, offset + length)),
    remove: async (digest) => void blobs.delete(digest),
    blobs: async () => [...blobs].map(([digest, bytes]) => ({ digest, size: bytes.byteLength })),
    ingestState: async (digest) => ingests.get(digest)?.state,
    ingestWrite: write,
    ...(options.inOrderOnly ? {} : { ingestWriteAt: write }),
    ingestCheckpoint: async (digest, state) => {
      entry(digest, 0).state = state;
      log.push(`checkpoint ${state.offset} ${JSON.stringify(state.spans ?? [])}`);
      states.push(state);
    },
    ...(options.written
      ? {
          ingestWritten: async () => {
            log.push("written");
            if (options.written !== "keeps") for (const giveBack of queued.splice(0)) giveBack();
          },
        }
      : {}),
    ingestRead: async (digest, offset, length) => {
      log.push(`read ${offset}+${length}`);
      for (const giveBack of queued.splice(0)) giveBack();
      const data = ingests.get(digest)?.data ?? new Uint8Array();
      const counted = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          taken.bytes += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      return chunked(data.subarray(offset, offset + length - damage.lose + damage.extra)).pipeThrough(
        counted,
      );
    },
    ingestCommit: async (digest, size) => {
      blobs.set(digest, (ingests.get(digest)?.data ?? new Uint8Array()).slice(0, size));
      ingests.delete(digest);
    },
    ingestDiscard: async (digest) => {
      ingests.delete(digest);
      log.push("discard");
    },
    ingests: async () => [...ingests].flatMap(([digest, { state }]) => (state ? [{ digest, state }] : [])),
    readTags: async () => new Map(),
    writeTags: async () => {},
  };
  /** Stores bytes and a record as an interrupted push would have left them. */
  const forge = (digest: string, bytes: Uint8Array, state: IngestState) => {
    const made = entry(digest, bytes.byteLength);
    for (const [start, end] of [[0, state.offset] as Span, ...(state.spans ?? [])])
      made.data.set(bytes.subarray(start, end), start);
    made.state = state;
  };
  return { backend, log, states, damage, forge, ingests, taken };
}

const KiB = 1024;

describe("store ingest of ranges side by side", () => {
  it("resumes from a record of spans: hashes the prefix and the spans from storage, fetches only the holes", async () => {
    const { backend, log, forge } = sparseBackend();
    const store = createStore(backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    const spans: Span[] = [
      [300 * KiB, 400 * KiB],
      [600 * KiB, 650 * KiB],
    ];
    forge(descriptor.digest, bytes, { offset: 100 * KiB, updatedAt: Date.now(), spans });
    const rest = spanSource(bytes);
    const tapped: Uint8Array[] = [];
    const progress: number[] = [];
    const result = await store.push(descriptor, rest.source, {
      tap: (b) => void tapped.push(b.slice()),
      onProgress: (n) => progress.push(n),
    });
    expect(rest.asked).toEqual([
      [
        [100 * KiB, 300 * KiB],
        [400 * KiB, 600 * KiB],
        [650 * KiB, 1024 * KiB],
      ],
    ]);
    expect(result).toMatchObject({ resumedFrom: 250 * KiB, fetched: 774 * KiB });
    // The prefix (no hasher state: read again, and for the tap), then each span once the prefix
    // reached it, with the ranges that landed after it.
    const reads = log.filter((l) => l.startsWith("read")).map((l) => l.split(/[ +]/).slice(1).map(Number));
    expect(reads.slice(0, 2)).toEqual([
      [0, 100 * KiB],
      [0, 100 * KiB],
    ]);
    expect(reads.slice(2).map(([at]) => at)).toEqual([300 * KiB, 600 * KiB]);
    expect((reads[2] as number[])[1]).toBeGreaterThanOrEqual(100 * KiB);
    expect((reads[3] as number[])[1]).toBeGreaterThanOrEqual(50 * KiB);
    const total = tapped.reduce((n, b) => n + b.byteLength, 0);
    expect(total).toBe(bytes.byteLength);
    expect(equal(new Uint8Array(await new Blob(tapped as BlobPart[]).arrayBuffer()), bytes)).toBe(true);
    expect(progress[0]).toBe(250 * KiB);
    expect(progress.at(-1)).toBe(bytes.byteLength);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it.each([
    [
      "overlapping",
      [
        [200, 300],
        [250, 400],
      ],
    ],
    [
      "out of order",
      [
        [500, 600],
        [200, 300],
      ],
    ],
    ["before the offset", [[50, 300]]],
    ["past the end", [[900, 1100]]],
    ["empty", [[300, 300]]],
    ["not whole numbers", [[200 + 1 / 3, 300]]],
    ["not pairs", ["200-300"]],
  ])("starts over from a record whose spans are %s", async (_, raw) => {
    const { backend, log, forge } = sparseBackend();
    const store = createStore(backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    forge(descriptor.digest, bytes, { offset: 100 * KiB, updatedAt: Date.now() });
    const spans = (raw as unknown[]).map((s) => (Array.isArray(s) ? s.map((n) => n * KiB) : s));
    ((await backend.ingestState(descriptor.digest)) as IngestState).spans = spans as Span[];
    const again = spanSource(bytes);
    expect((await store.push(descriptor, again.source)).resumedFrom).toBe(0);
    expect(again.asked).toEqual([[[0, bytes.byteLength]]]);
    expect(log).toContain("discard");
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("fails with STORAGE and keeps nothing when a recorded span reads back short, then starts over", async () => {
    const { backend, log, damage, forge, ingests } = sparseBackend();
    const store = createStore(backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(512 * KiB);
    forge(descriptor.digest, bytes, {
      offset: 0,
      updatedAt: Date.now(),
      spans: [[200 * KiB, 300 * KiB]],
    });
    damage.lose = 1;
    const error = await failure(store.push(descriptor, spanSource(bytes).source));
    expect(error.code).toBe("STORAGE");
    expect(error.message).toMatch(
      /bytes 204800-\d+ it had stored read back as \d+ bytes; pushing again starts over/,
    );
    expect(ingests.has(descriptor.digest)).toBe(false);
    expect(await store.exists(descriptor)).toBe(false);
    damage.lose = 0;
    const again = spanSource(bytes);
    expect((await store.push(descriptor, again.source)).resumedFrom).toBe(0);
    expect(log.filter((l) => l === "discard")).toHaveLength(1);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("records spans only after they are written, and never one the prefix already covers", async () => {
    const { backend, log } = sparseBackend();
    const store = createStore(backend, { chunkSize: 32 * KiB, checkpointBytes: 32 * KiB });
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    await store.push(descriptor, spanSource(bytes, { range: 256 * KiB, ways: 4, chunk: 8 * KiB }).source);
    const written = new Set<number>();
    for (const line of log) {
      const w = /^write (\d+)\+(\d+)$/.exec(line);
      if (w) for (let at = Number(w[1]); at < Number(w[1]) + Number(w[2]); at += KiB) written.add(at);
      const c = /^checkpoint (\d+) (.*)$/.exec(line);
      if (!c) continue;
      const offset = Number(c[1]);
      for (const [start, end] of JSON.parse(c[2] as string) as Span[]) {
        expect(start).toBeGreaterThan(offset);
        for (let at = start; at < end; at += KiB) expect(written.has(at)).toBe(true);
      }
    }
    // Ranges did land ahead of the prefix.
    expect(log.some((l) => /^checkpoint \d+ \[\[/.test(l))).toBe(true);
    expect(log.at(-1)).toBe(`checkpoint ${bytes.byteLength} []`);
  });

  it("forgets recorded spans before writing an ordered source over them", async () => {
    const { backend, log, forge } = sparseBackend();
    const store = createStore(backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(512 * KiB);
    forge(descriptor.digest, bytes, {
      offset: 64 * KiB,
      updatedAt: Date.now(),
      spans: [[256 * KiB, 320 * KiB]],
    });
    const ordered = countingSource(bytes);
    expect((await store.push(descriptor, ordered.source)).resumedFrom).toBe(64 * KiB);
    expect(ordered.calls).toEqual([64 * KiB]);
    const firstWrite = log.findIndex((l) => l.startsWith("write"));
    expect(log.slice(0, firstWrite)).toContain(`checkpoint ${64 * KiB} []`);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("hashes chunks that landed ahead from memory when the backend gives them back, else reads them back", async () => {
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    const ranged = () => spanSource(bytes, { range: 256 * KiB, ways: 4, chunk: 8 * KiB }).source;
    const given = sparseBackend({ giveBack: true });
    await createStore(given.backend, { chunkSize: 32 * KiB }).push(descriptor, ranged());
    expect(given.log.filter((l) => l.startsWith("read"))).toEqual([]);
    const kept = sparseBackend();
    const store = createStore(kept.backend, { chunkSize: 32 * KiB });
    await store.push(descriptor, ranged());
    expect(kept.log.filter((l) => l.startsWith("read")).length).toBeGreaterThan(0);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("keeps chunks a backend gives back only after their writes resolved (a queue), once it saw one come late", async () => {
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    const late = sparseBackend({ giveBack: "late" });
    const store = createStore(late.backend, { chunkSize: 32 * KiB });
    // Paced: a piece every few milliseconds, as a network gives them, so the chunks come back in time.
    const source = spanSource(bytes, { range: 256 * KiB, ways: 4, chunk: 8 * KiB, delayMs: 1 }).source;
    await store.push(descriptor, source);
    const read = late.log
      .filter((l) => l.startsWith("read"))
      .reduce((n, l) => n + Number(l.split("+")[1]), 0);
    // 768 KiB land ahead of the prefix: only those written before the first chunk came back are read back.
    expect(read).toBeLessThanOrEqual(2 * 32 * KiB);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  /**
   * Pushes a 1 MiB blob into `backend` as two ranges of 512 KiB in pieces of one chunk: the first
   * range's first four, then by turns (so that it is known the chunks come back late before the
   * second range's first one is written), then the second's last four. Checks what it stores.
   */
  async function pushInterleaved(backend: ReturnType<typeof sparseBackend>) {
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    const store = createStore(backend.backend, { chunkSize: 32 * KiB });
    const piece = (at: number) => ({ offset: at, bytes: bytes.slice(at, at + 32 * KiB) });
    const order = [0, 1, 2, 3].map((i) => i * 32 * KiB);
    for (let i = 4; i < 16; i++) order.push(i * 32 * KiB, 512 * KiB + (i - 4) * 32 * KiB);
    for (let i = 12; i < 16; i++) order.push(512 * KiB + i * 32 * KiB);
    const source = {
      from: spanSource(bytes).source.from,
      spans: async () =>
        new ReadableStream({
          pull(controller) {
            const at = order.shift();
            if (at === undefined) controller.close();
            else controller.enqueue(piece(at));
          },
        }),
    };
    await store.push(descriptor, source);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  }

  it("hashes from memory a chunk given back while a read of it waited for the writes before it", async () => {
    const queued = sparseBackend({ giveBack: "queued" });
    await pushInterleaved(queued);
    // When the first range ends, the two chunks of the second written last are not back: the read
    // of the first of them waits for them, and they are hashed from memory instead (the read is
    // dropped: at most a piece of it was taken).
    expect(queued.log.filter((l) => l.startsWith("read"))).toEqual([
      `read ${512 * KiB + 10 * 32 * KiB}+${32 * KiB}`,
    ]);
    expect(queued.taken.bytes).toBeLessThan(32 * KiB);
  });

  it("waits for a backend's queued writes rather than read back a chunk at the prefix still on its way back", async () => {
    const queued = sparseBackend({ giveBack: "queued", written: true });
    await pushInterleaved(queued);
    expect(queued.log.filter((l) => l.startsWith("read"))).toEqual([]);
    expect(queued.log.filter((l) => l === "written")).toHaveLength(1);
    expect(queued.taken.bytes).toBe(0);
  });

  it("reads back a chunk at the prefix that a backend's wait for its writes did not give back", async () => {
    const keeps = sparseBackend({ giveBack: "queued", written: "keeps" });
    await pushInterleaved(keeps);
    expect(keeps.log.filter((l) => l === "written")).toHaveLength(1);
    // The first chunk not back is read up to the next awaited one, which that read gave back.
    expect(keeps.log.filter((l) => l.startsWith("read"))).toEqual([`read ${832 * KiB}+${32 * KiB}`]);
    expect(keeps.taken.bytes).toBe(0);
  });

  it("records the hasher's state with the prefix, ranges or not, from a hasher that saves one", async () => {
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    const ranged = sparseBackend();
    const options = { chunkSize: 32 * KiB, checkpointBytes: 32 * KiB, createHasher: createWasmHasher };
    await createStore(ranged.backend, options).push(descriptor, spanSource(bytes).source);
    expect(ranged.states.filter((s) => s.offset > 0).every((s) => s.hasherState)).toBe(true);
    // An ordered source over recorded spans: the record that drops them keeps the hasher's state.
    const ordered = sparseBackend();
    ordered.forge(descriptor.digest, bytes, {
      offset: 64 * KiB,
      updatedAt: Date.now(),
      spans: [[256 * KiB, 320 * KiB]],
    });
    const store = createStore(ordered.backend, options);
    const first = store.push(descriptor, countingSource(bytes, 300 * KiB).source);
    expect((await failure(first)).code).toBe("NETWORK");
    expect(ordered.states[0]).toMatchObject({ offset: 64 * KiB });
    expect(ordered.states[0]?.spans).toBeUndefined();
    expect(ordered.states[0]?.hasherState).toBeInstanceOf(Uint8Array);
    await store.push(descriptor, countingSource(bytes).source);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("resumes an ordered source over recorded spans with a hasher that saves nothing", async () => {
    const { bytes, descriptor } = await blobOf(512 * KiB);
    const unsaved: CreateHasher = async (algorithm) => {
      const { update, digest } = await createWasmHasher(algorithm);
      return { update, digest };
    };
    const { backend, forge, states } = sparseBackend();
    forge(descriptor.digest, bytes, {
      offset: 64 * KiB,
      updatedAt: Date.now(),
      spans: [[256 * KiB, 320 * KiB]],
    });
    const store = createStore(backend, { chunkSize: 64 * KiB, createHasher: unsaved });
    expect((await store.push(descriptor, countingSource(bytes).source)).resumedFrom).toBe(64 * KiB);
    expect(states.every((s) => s.hasherState === undefined)).toBe(true);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("reads a range source in order into a backend that cannot write at an offset", async () => {
    const { bytes, descriptor } = await blobOf(512 * KiB);
    const { backend } = sparseBackend({ inOrderOnly: true });
    const ranged = spanSource(bytes);
    await createStore(backend, { chunkSize: 64 * KiB }).push(descriptor, ranged.source);
    expect(ranged.asked).toEqual([]);
    expect(ranged.from).toEqual([0]);
  });

  it("fails with STORAGE naming the hasher when it breaks in the middle of ranges, and records nothing after", async () => {
    const { bytes, descriptor } = await blobOf(512 * KiB);
    let calls = 0;
    const breaking: CreateHasher = async (algorithm) => {
      const hasher = await createWasmHasher(algorithm);
      return {
        ...hasher,
        update: (data) => {
          if (++calls > 3) throw new Error("out of memory (test)");
          return hasher.update(data);
        },
        digest: () => hasher.digest(),
      };
    };
    const { backend, states } = sparseBackend();
    const store = createStore(backend, {
      chunkSize: 32 * KiB,
      checkpointBytes: 32 * KiB,
      createHasher: breaking,
    });
    const error = await failure(store.push(descriptor, spanSource(bytes).source));
    expect(error.code).toBe("STORAGE");
    expect(error.message).toMatch(/the hasher failed \(out of memory \(test\)\)/);
    expect(Math.max(...states.map((s) => s.offset))).toBeLessThanOrEqual(3 * 32 * KiB);
  });

  it("passes over an empty piece, wherever it says it is (a body may hand out an empty chunk)", async () => {
    const store = createStore(sparseBackend().backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(256 * KiB);
    const stray = { after: 100 * KiB, piece: { offset: 7, bytes: new Uint8Array(0) } };
    await store.push(descriptor, spanSource(bytes, { stray }).source);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("asks the quota for the spans too when an ordered source will fetch them again", async () => {
    const { bytes, descriptor } = await blobOf(512 * KiB);
    const record = { offset: 64 * KiB, updatedAt: Date.now(), spans: [[256 * KiB, 448 * KiB] as Span] };
    // Room for what neither the prefix nor the spans hold, and no more.
    const free = bytes.byteLength - 64 * KiB - 192 * KiB;
    const estimate = async () => ({ usage: 0, quota: free });
    const ranged = sparseBackend();
    ranged.forge(descriptor.digest, bytes, record);
    await createStore(ranged.backend, { chunkSize: 64 * KiB, estimate }).push(
      descriptor,
      spanSource(bytes).source,
    );
    const ordered = sparseBackend();
    ordered.forge(descriptor.digest, bytes, record);
    const store = createStore(ordered.backend, { chunkSize: 64 * KiB, estimate });
    expect((await failure(store.push(descriptor, countingSource(bytes).source))).code).toBe("QUOTA_EXCEEDED");
  });

  it("stops with ABORTED, keeping every range that arrived, and the next push fetches only the rest", async () => {
    const store = createStore(sparseBackend().backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    const controller = new AbortController();
    const first = spanSource(bytes);
    const pending = store.push(descriptor, first.source, {
      signal: controller.signal,
      onProgress: (n) => {
        if (n > 500 * KiB) controller.abort();
      },
    });
    expect((await failure(pending)).code).toBe("ABORTED");
    const rest = spanSource(bytes);
    const result = await store.push(descriptor, rest.source);
    expect(result.resumedFrom).toBeGreaterThan(500 * KiB);
    // What the source had queued when the push stopped (one piece) was never read.
    expect(first.served() + rest.served()).toBeLessThanOrEqual(bytes.byteLength + 32 * KiB);
    expect(result.resumedFrom + rest.served()).toBe(bytes.byteLength);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });
  it("fails with SIZE_MISMATCH when the source ends with bytes missing, keeping what came for the next push", async () => {
    const { backend } = sparseBackend();
    const store = createStore(backend, { chunkSize: 32 * KiB });
    const { bytes, descriptor } = await blobOf(512 * KiB);
    // A source that serves the first 300 KiB of what it is asked for, then ends as if that were all.
    const short = spanSource(bytes.subarray(0, 300 * KiB));
    const shortSource = {
      from: short.source.from,
      spans: async () => short.source.spans([[0, 300 * KiB]]),
    };
    const error = await failure(store.push(descriptor, shortSource));
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(error.message).toMatch(
      /the source ended with 217088 of 524288 bytes missing; pushing again resumes from there/,
    );
    const rest = spanSource(bytes);
    const result = await store.push(descriptor, rest.source);
    expect(result.resumedFrom).toBe(300 * KiB);
    expect(rest.asked).toEqual([[[300 * KiB, 512 * KiB]]]);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("asks the source nothing when the prefix and the spans recorded hold the whole blob", async () => {
    const { backend, forge } = sparseBackend();
    const store = createStore(backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(512 * KiB);
    forge(descriptor.digest, bytes, {
      offset: 200 * KiB,
      updatedAt: Date.now(),
      spans: [[200 * KiB, 512 * KiB]],
    });
    const source = spanSource(bytes);
    const result = await store.push(descriptor, source.source);
    expect(result).toMatchObject({ resumedFrom: 512 * KiB, fetched: 0 });
    expect(source.asked).toEqual([]);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("hashes only the bytes asked for when a read back hands out more", async () => {
    const { backend, damage, forge } = sparseBackend();
    const store = createStore(backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(512 * KiB);
    forge(descriptor.digest, bytes, { offset: 0, updatedAt: Date.now(), spans: [[100 * KiB, 300 * KiB]] });
    damage.extra = 5000;
    await store.push(descriptor, spanSource(bytes).source);
    expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
  });

  it("records a checkpoint every checkpointBytes written, with spans only while some landed past the prefix", async () => {
    const { backend, states } = sparseBackend();
    const store = createStore(backend, { chunkSize: 16 * KiB, checkpointBytes: 128 * KiB });
    const { bytes, descriptor } = await blobOf(1024 * KiB);
    await store.push(descriptor, spanSource(bytes, { range: 256 * KiB, ways: 2, chunk: 8 * KiB }).source);
    // 1 MiB in 128 KiB steps, and the last one (the final record may fall on a step).
    expect(states.length).toBeGreaterThanOrEqual(8);
    expect(states.length).toBeLessThanOrEqual(9);
    expect(states.some((state) => (state.spans?.length ?? 0) > 0)).toBe(true);
    for (const state of states) if (state.spans) expect(state.spans.length).toBeGreaterThan(0);
    expect(states.at(-1)).toMatchObject({ offset: bytes.byteLength });
    expect(states.at(-1)).not.toHaveProperty("spans");
  });

  it("stops with ABORTED at once while the source waits for bytes that never come", async () => {
    const store = createStore(sparseBackend().backend, { chunkSize: 64 * KiB });
    const { bytes, descriptor } = await blobOf(256 * KiB);
    let cancelled: unknown;
    const stalled = {
      from: spanSource(bytes).source.from,
      spans: async () =>
        new ReadableStream({
          start(controller) {
            controller.enqueue({ offset: 0, bytes: bytes.slice(0, 10 * KiB) });
          },
          cancel(reason) {
            cancelled = reason;
          },
        }),
    };
    const controller = new AbortController();
    const pending = store.push(descriptor, stalled, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user left")), 50);
    const error = await failure(pending);
    expect(error.code).toBe("ABORTED");
    expect(cancelled).toBeInstanceOf(Error);
    expect((cancelled as Error).message).toBe("user left");
  });

  /**
   * `ingestSpans` of `bytes` into `backend` from pieces of `piece` bytes at `order`'s offsets (by
   * default every piece in order; the source fails with `error.error` once `error.after` bytes
   * came), in chunks of 32 KiB.
   */
  const ingestPieces = (
    backend: StoreBackend,
    bytes: Uint8Array,
    options: {
      piece?: number;
      order?: number[];
      error?: { after: number; error: unknown };
    } & Partial<SpansIngest> = {},
  ) => {
    const { piece = 32 * KiB, error, ...rest } = options;
    const order =
      options.order ?? Array.from({ length: Math.ceil(bytes.byteLength / piece) }, (_, i) => i * piece);
    let sent = 0;
    return ingestSpans({
      backend: backend as Required<StoreBackend>,
      digest: "sha256:pieces",
      size: bytes.byteLength,
      source: {
        from: spanSource(bytes).source.from,
        spans: async () =>
          new ReadableStream({
            pull(controller) {
              const at = order.shift();
              if (error && sent >= error.after) controller.error(error.error);
              else if (at === undefined) controller.close();
              else {
                controller.enqueue({ offset: at, bytes: bytes.slice(at, at + piece) });
                sent += piece;
              }
            },
          }),
      },
      offset: 0,
      spans: [],
      hash: async () => {},
      save: () => undefined,
      chunkSize: 32 * KiB,
      checkpointBytes: 1024 * KiB,
      action: "test",
      ...rest,
    });
  };

  it("records a checkpoint each time checkpointBytes more are written, and the final one", async () => {
    const { backend, states } = sparseBackend();
    const { bytes } = await blobOf(256 * KiB);
    await ingestPieces(backend, bytes, { checkpointBytes: 64 * KiB });
    expect(states.map((state) => state.offset / KiB)).toEqual([64, 128, 192, 256, 256]);
  });

  it("has the final record written before the ingest resolves", async () => {
    const { backend, states } = sparseBackend();
    const { ingestCheckpoint } = backend;
    backend.ingestCheckpoint = async (digest, state) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return ingestCheckpoint(digest, state);
    };
    const { bytes } = await blobOf(96 * KiB);
    await ingestPieces(backend, bytes);
    expect(states.map((state) => state.offset)).toEqual([bytes.byteLength]);
  });

  it("records nothing more once the hasher failed (its state may be past bytes never stored)", async () => {
    const { backend, states } = sparseBackend();
    const { bytes } = await blobOf(256 * KiB);
    let calls = 0;
    let recordedBefore = -1;
    const error = await failure(
      ingestPieces(backend, bytes, {
        piece: 48 * KiB,
        checkpointBytes: 32 * KiB,
        hash: async () => {
          if (++calls < 3) return;
          recordedBefore = states.length;
          throw new OciError("STORAGE", "Cannot hash: the hasher broke");
        },
        save: () => new Uint8Array([calls]),
      }),
    );
    expect(error.message).toBe("Cannot hash: the hasher broke");
    expect(recordedBefore).toBeGreaterThan(0);
    expect(states).toHaveLength(recordedBefore);
    expect(states.at(-1)?.offset).toBe(64 * KiB);
  });

  it("records nothing after a source's SIZE_MISMATCH (a range of the wrong size), as an ordered push", async () => {
    const { backend, states } = sparseBackend();
    const { bytes } = await blobOf(256 * KiB);
    const wrong = new OciError("SIZE_MISMATCH", "Cannot fetch: a range ran past its end");
    const run = async (error: unknown) => {
      states.length = 0;
      await failure(
        ingestPieces(backend, bytes, {
          piece: 48 * KiB,
          checkpointBytes: 64 * KiB,
          error: { after: 144 * KiB, error },
        }),
      );
      return states.map((state) => state.offset / KiB);
    };
    // A network failure keeps what came (its last 16 KiB were pending a full chunk); a wrong size
    // keeps only what was recorded before it.
    expect(await run(new OciError("NETWORK", "Cannot fetch: the connection was reset"))).toEqual([
      64, 128, 144,
    ]);
    await backend.ingestDiscard("sha256:pieces");
    expect(await run(wrong)).toEqual([64, 128]);
  });

  it("reads back a chunk landed ahead whose write ended only after the prefix had reached it", async () => {
    // The second half comes first and its write takes 20 ms; the first half is hashed meanwhile, so
    // when that write ends the prefix stands exactly where it starts: it is still to be hashed.
    const { bytes } = await blobOf(64 * KiB);
    const { backend } = sparseBackend({ giveBack: true });
    const { ingestWriteAt } = backend as Required<StoreBackend>;
    backend.ingestWriteAt = async (d, at, b, recycle) => {
      await new Promise((resolve) => setTimeout(resolve, at === 0 ? 0 : 20));
      return ingestWriteAt(d, at, b, recycle);
    };
    const out: Uint8Array[] = [];
    await ingestPieces(backend, bytes, {
      order: [32 * KiB, 0],
      hash: async (b) => void out.push(b.slice()),
      aheadBytes: 0,
    });
    expect(equal(new Uint8Array(await new Blob(out as BlobPart[]).arrayBuffer()), bytes)).toBe(true);
  });

  it("keeps at most aheadBytes of chunks landed ahead in memory, reads back the rest, and frees it as it hashes", async () => {
    const { bytes } = await blobOf(2048 * KiB);
    /** Bytes written ahead of the prefix, and read back, with `aheadBytes` kept at most. */
    const run = async (aheadBytes: number) => {
      const { backend } = sparseBackend({ giveBack: true });
      let hashed = 0;
      let ahead = 0;
      let read = 0;
      const { ingestWriteAt, ingestRead } = backend as Required<StoreBackend>;
      backend.ingestWriteAt = async (d, at, b, recycle) => {
        if (at >= hashed) ahead += b.byteLength; // a chunk at the prefix is hashed before it is written
        return ingestWriteAt(d, at, b, recycle);
      };
      backend.ingestRead = async (d, offset, length) => {
        read += length;
        return ingestRead(d, offset, length);
      };
      const out: Uint8Array[] = [];
      await ingestSpans({
        backend: backend as Required<StoreBackend>,
        digest: "sha256:ahead",
        size: bytes.byteLength,
        // Eight ranges of 256 KiB, four at a time: three land ahead of the prefix's, twice.
        source: spanSource(bytes, { range: 256 * KiB, ways: 4, chunk: 8 * KiB }).source,
        offset: 0,
        spans: [],
        hash: async (b) => {
          out.push(b.slice());
          hashed += b.byteLength;
        },
        save: () => undefined,
        chunkSize: 32 * KiB,
        checkpointBytes: 1024 * KiB,
        aheadBytes,
        action: "test",
      });
      expect(equal(new Uint8Array(await new Blob(out as BlobPart[]).arrayBuffer()), bytes)).toBe(true);
      return { ahead, read };
    };
    const none = await run(0);
    expect(none.ahead).toBeGreaterThan(1024 * KiB);
    expect(none.read).toBe(none.ahead);
    // Room for exactly one chunk keeps one.
    expect((await run(32 * KiB)).read).toBeLessThan(none.read);
    expect((await run(4096 * KiB)).read).toBe(0);
    const some = await run(128 * KiB);
    expect(some.ahead).toBe(none.ahead);
    // More than 128 KiB came from memory over the whole pull (what was hashed made room again), and
    // far less than all that landed ahead (1.375 MiB): the room is spent as chunks are kept.
    expect(some.ahead - some.read).toBeGreaterThan(128 * KiB);
    expect(some.ahead - some.read).toBeLessThan(4 * 128 * KiB);
  });
});
