// One large blob fetched as several Range requests at a time (src/registry/ranges.ts), against a
// registry double that serves ranges, ignores them, cuts bodies or sends the wrong range.
import { describe, expect, it } from "vitest";
import { createRegistryClient, createRemoteStore, type RangeOptions } from "../../src/index.js";
import { blobOf, equal, readAll } from "../support/blobs.js";
import { failure } from "../support/failure.js";

const REF = "registry.test/ns/model";
const MiB = 1024 * 1024;

interface Served {
  ranges: string[];
  /** Body bytes sent. */
  bytes: number;
  /** Most requests open at once. */
  peak: number;
}

/**
 * A registry double holding one blob. `ranges: false` ignores Range (200, the whole blob); `cut`
 * cuts the body of the n-th request (1-based) after that many bytes; `wrongStart` shifts one range;
 * `rate` holds each body (or all of them together: `shared`) to so many bytes per second.
 */
function registry(
  blob: Uint8Array,
  options: {
    ranges?: boolean;
    cut?: Map<number, number>;
    wrongStart?: number;
    delayMs?: number;
    /** Ms before the first byte of the n-th request (1-based). */
    stall?: Map<number, number>;
    rate?: { bytesPerSecond: number; shared: boolean };
  } = {},
) {
  const served: Served = { ranges: [], bytes: 0, peak: 0 };
  let open = 0;
  let requests = 0;
  /** When a line of `rate` is free next (ms): one for all bodies, or one per body. */
  let sharedFree = 0;
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const n = ++requests;
    const range = request.headers.get("range");
    served.ranges.push(range ?? "");
    const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? "");
    const partial = options.ranges !== false && m !== null;
    let start = partial ? Number(m[1]) : 0;
    const end = partial && m[2] ? Number(m[2]) + 1 : blob.byteLength;
    if (partial && options.wrongStart === n) start += 1;
    const body = blob.subarray(start, end);
    const cutAt = options.cut?.get(n);
    open++;
    served.peak = Math.max(served.peak, open);
    let at = 0;
    let cut = false;
    let ownFree = 0;
    const paced = async (bytes: number) => {
      if (!options.rate) return;
      const now = Date.now();
      const free = Math.max(now, options.rate.shared ? sharedFree : ownFree);
      const until = free + (bytes / options.rate.bytesPerSecond) * 1000;
      if (options.rate.shared) sharedFree = until;
      else ownFree = until;
      await new Promise((r) => setTimeout(r, until - now));
    };
    // Pulled piece by piece: a cut body delivers what came before the cut, then fails.
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at === 0 && options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
        const stall = at === 0 ? options.stall?.get(n) : undefined;
        if (stall) await new Promise((r) => setTimeout(r, stall));
        if (cut) {
          open--;
          controller.error(new TypeError("terminated"));
          return;
        }
        if (at >= body.byteLength) {
          open--;
          controller.close();
          return;
        }
        let piece = body.slice(at, Math.min(at + 256 * 1024, body.byteLength));
        if (cutAt !== undefined && at + piece.byteLength > cutAt) {
          piece = piece.subarray(0, cutAt - at);
          cut = true;
        }
        at += piece.byteLength;
        await paced(piece.byteLength);
        served.bytes += piece.byteLength;
        controller.enqueue(piece);
      },
    });
    return new Response(stream, {
      status: partial ? 206 : 200,
      headers: {
        "content-length": String(body.byteLength),
        ...(partial ? { "content-range": `bytes ${start}-${end - 1}/${blob.byteLength}` } : {}),
      },
    });
  }) as typeof globalThis.fetch;
  return { fetch, served };
}

/** A descriptor for `bytes` (the double serves any digest; nothing here verifies it). */
const descriptorOf = (bytes: Uint8Array) => ({ digest: `sha256:${"0".repeat(64)}`, size: bytes.byteLength });

async function fetchAll(fetch: typeof globalThis.fetch, bytes: Uint8Array, ranges: RangeOptions, ref = REF) {
  const descriptor = descriptorOf(bytes);
  const client = createRegistryClient({ fetch, ranges, retryDelay: 1 });
  return readAll(await client.fetchBlobRange(ref, descriptor, { offset: 0, length: bytes.byteLength }));
}

const SLOW = { chunkBytes: MiB, connections: 3, fastBytesPerSecond: Number.POSITIVE_INFINITY };

describe("a large blob in several Range requests", () => {
  it("asks for the first range alone, then the rest in ranges, at most `connections` at a time, in order", async () => {
    const { bytes } = await blobOf(10 * MiB + 12345);
    const { fetch, served } = registry(bytes, { delayMs: 5 });
    expect(equal(await fetchAll(fetch, bytes, SLOW), bytes)).toBe(true);
    expect(served.ranges).toHaveLength(11);
    expect(served.ranges[0]).toBe(`bytes=0-${MiB - 1}`);
    expect(new Set(served.ranges).size).toBe(11);
    expect(served.ranges).toContain(`bytes=${10 * MiB}-${10 * MiB + 12344}`);
    expect(served.peak).toBe(3);
    expect(served.bytes).toBe(bytes.byteLength);
  });

  it("fetches the rest in one request when the first range came fast (a connection that does not limit)", async () => {
    const { bytes } = await blobOf(5 * MiB);
    const { fetch, served } = registry(bytes);
    expect(equal(await fetchAll(fetch, bytes, { chunkBytes: MiB, fastBytesPerSecond: 0 }), bytes)).toBe(true);
    expect(served.ranges).toEqual([`bytes=0-${MiB - 1}`, `bytes=${MiB}-${5 * MiB - 1}`]);
  });

  it.each([
    ["one connection's (a throttled connection): the rest in ranges", false, 0, 12],
    // Judged from the answers: 3 ranges of 50 ms each behind a 150 ms round trip are not slow.
    ["one connection's, behind a long round trip: the rest in ranges", false, 150, 12],
    // The first range, the first window of 3, up to 2 more started while it was judged, the rest.
    [
      "all connections' together (a CPU or a link they share): the rest, once judged, in one request",
      true,
      0,
      7,
    ],
  ] as const)(
    "judges ranges by their first window when the rate that limits is %s",
    async (_, shared, rttMs, most) => {
      // 12 MiB at 20 MB/s: the first range alone, starved (the reader waits): ranges, 3 at a time.
      const { bytes } = await blobOf(12 * MiB);
      const { fetch: serve, served } = registry(bytes, { rate: { bytesPerSecond: 20e6, shared } });
      const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
        if (rttMs) await new Promise((r) => setTimeout(r, rttMs)); // a round trip before the answer
        return serve(input, init);
      }) as typeof globalThis.fetch;
      expect(equal(await fetchAll(fetch, bytes, { chunkBytes: MiB, connections: 3 }), bytes)).toBe(true);
      expect(served.ranges.slice(0, 4)).toEqual(
        [0, 1, 2, 3].map((i) => `bytes=${i * MiB}-${(i + 1) * MiB - 1}`),
      );
      expect(served.ranges.length).toBeLessThanOrEqual(most);
      expect(served.ranges.at(-1)).toMatch(new RegExp(`-${12 * MiB - 1}$`));
      expect(served.bytes).toBe(bytes.byteLength);
      if (!shared) expect(served.ranges).toHaveLength(12);
    },
  );

  it("counts a first range from its answer and without the time it waited for a slow reader", async () => {
    // The registry answers after 300 ms and then at memory speed; the reader takes 4 MiB at about
    // 20 MB/s. Neither the round trip nor the reader is the link: it is fast, the rest comes in one
    // request (no parallel ranges a slow reader could not use).
    const { bytes } = await blobOf(16 * MiB);
    const { fetch: serve, served } = registry(bytes);
    const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      await new Promise((r) => setTimeout(r, 300)); // a round trip before the answer
      return serve(input, init);
    }) as typeof globalThis.fetch;
    const client = createRegistryClient({
      fetch,
      ranges: { chunkBytes: 4 * MiB, fastBytesPerSecond: 50e6 },
      retryDelay: 1,
    });
    const descriptor = descriptorOf(bytes);
    const stream = await client.fetchBlobRange(REF, descriptor, { offset: 0, length: bytes.byteLength });
    const read: Uint8Array[] = [];
    for await (const piece of stream as unknown as AsyncIterable<Uint8Array>) {
      read.push(piece);
      if (read.length <= 16) await new Promise((r) => setTimeout(r, 12)); // 256 KiB per 12 ms ≈ 20 MB/s
    }
    expect(read.reduce((n, p) => n + p.byteLength, 0)).toBe(bytes.byteLength);
    expect(served.ranges).toEqual([`bytes=0-${4 * MiB - 1}`, `bytes=${4 * MiB}-${16 * MiB - 1}`]);
  });

  it("takes only the time the first range waited for its reader out of its rate: a slow link stays slow", async () => {
    // 1 MiB ranges at 20 MB/s each (~52 ms); the reader starts 150 ms late, so the first range
    // waits ~100 ms for it. Less that wait, the first range came at 20 MB/s: the rest in ranges.
    const { bytes } = await blobOf(4 * MiB);
    const { fetch, served } = registry(bytes, { rate: { bytesPerSecond: 20e6, shared: false } });
    const client = createRegistryClient({
      fetch,
      ranges: { ...SLOW, fastBytesPerSecond: 100e6 },
      retryDelay: 1,
    });
    const descriptor = descriptorOf(bytes);
    const stream = await client.fetchBlobRange(REF, descriptor);
    await new Promise((r) => setTimeout(r, 150));
    expect(equal(await readAll(stream), bytes)).toBe(true);
    expect(served.ranges).toEqual([0, 1, 2, 3].map((i) => `bytes=${i * MiB}-${(i + 1) * MiB - 1}`));
  });

  it("takes a 200 to the first range as the whole blob: one request", async () => {
    const { bytes } = await blobOf(4 * MiB + 1);
    const { fetch, served } = registry(bytes, { ranges: false });
    expect(equal(await fetchAll(fetch, bytes, SLOW), bytes)).toBe(true);
    expect(served.ranges).toHaveLength(1);
  });

  it("asks a cut range again from where it stopped: no byte fetched twice", async () => {
    const { bytes } = await blobOf(6 * MiB);
    const { fetch, served } = registry(bytes, { cut: new Map([[3, 300_000]]) });
    expect(equal(await fetchAll(fetch, bytes, SLOW), bytes)).toBe(true);
    expect(served.bytes).toBe(bytes.byteLength);
    // The third request (bytes 2 MiB…) was cut after 300 000 bytes and asked again from there.
    expect(served.ranges.filter((r) => r.endsWith(`-${3 * MiB - 1}`))).toEqual([
      `bytes=${2 * MiB}-${3 * MiB - 1}`,
      `bytes=${2 * MiB + 300_000}-${3 * MiB - 1}`,
    ]);
  });

  it("asks the rest fetched in one request again from where a cut stopped, and gives up after `retries`", async () => {
    const { bytes } = await blobOf(6 * MiB);
    const fast = { chunkBytes: MiB, fastBytesPerSecond: 0, retries: 2 };
    const once = registry(bytes, { cut: new Map([[2, 300_000]]) });
    expect(equal(await fetchAll(once.fetch, bytes, fast), bytes)).toBe(true);
    expect(once.served.ranges).toEqual([
      `bytes=0-${MiB - 1}`,
      `bytes=${MiB}-${6 * MiB - 1}`,
      `bytes=${MiB + 300_000}-${6 * MiB - 1}`,
    ]);
    expect(once.served.bytes).toBe(bytes.byteLength);
    const always = registry(bytes, { cut: new Map([2, 3, 4, 5].map((n) => [n, 10])) });
    const error = await failure(fetchAll(always.fetch, bytes, fast));
    expect(error.message).toMatch(/terminated/);
    expect(always.served.ranges).toHaveLength(4); // the first range, the rest, and 2 retries
  });

  it("gives up on a range cut more than `retries` times, with the network's error", async () => {
    const { bytes } = await blobOf(4 * MiB);
    const cuts = new Map(Array.from({ length: 10 }, (_, i) => [i + 2, 10] as [number, number]));
    const { fetch } = registry(bytes, { cut: cuts });
    const error = await failure(fetchAll(fetch, bytes, { ...SLOW, retries: 2 }));
    expect(error.message).toMatch(/terminated/);
  });

  it("refuses a range that starts elsewhere than asked: SIZE_MISMATCH", async () => {
    const { bytes } = await blobOf(4 * MiB);
    const { fetch } = registry(bytes, { wrongStart: 3 });
    const error = await failure(fetchAll(fetch, bytes, SLOW));
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(error.message).toMatch(/asked for bytes \d+-\d+, the registry sent/);
  });

  it("fetches a blob under two ranges, or with connections 1, in one request; one of two ranges in two", async () => {
    const { bytes } = await blobOf(2 * MiB - 1);
    const small = registry(bytes);
    expect(equal(await fetchAll(small.fetch, bytes, SLOW), bytes)).toBe(true);
    expect(small.served.ranges).toEqual([""]);
    const two = await blobOf(2 * MiB);
    const exactlyTwo = registry(two.bytes);
    expect(equal(await fetchAll(exactlyTwo.fetch, two.bytes, SLOW), two.bytes)).toBe(true);
    expect(exactlyTwo.served.ranges).toEqual([`bytes=0-${MiB - 1}`, `bytes=${MiB}-${2 * MiB - 1}`]);
    const big = await blobOf(4 * MiB);
    const one = registry(big.bytes);
    expect(equal(await fetchAll(one.fetch, big.bytes, { ...SLOW, connections: 1 }), big.bytes)).toBe(true);
    expect(one.served.ranges).toEqual([""]);
  });

  it("holds at most `connections` ranges ahead of a reader that stops, and cancelling stops every request", async () => {
    const { bytes } = await blobOf(12 * MiB);
    const { fetch, served } = registry(bytes);
    const client = createRegistryClient({ fetch, ranges: SLOW, retryDelay: 1 });
    const stream = await client.fetchBlobRange(REF, descriptorOf(bytes));
    const reader = stream.getReader();
    let read = 0;
    while (read < 1.5 * MiB) read += ((await reader.read()).value as Uint8Array).byteLength;
    await new Promise((r) => setTimeout(r, 100));
    // The first range, then three (the second being read): 4 MiB of 12 at most.
    expect(served.bytes).toBeLessThanOrEqual(4 * MiB);
    expect(served.bytes).toBeGreaterThan(2 * MiB);
    await reader.cancel();
    const after = served.bytes;
    await new Promise((r) => setTimeout(r, 100));
    expect(served.bytes).toBe(after);
  });

  it("asks a range again after it stalled past the idle timeout (TIMEOUT), from where it stopped", async () => {
    const { bytes } = await blobOf(4 * MiB);
    // The second request sends nothing for 300 ms; the client gives up on a body after 50.
    const { fetch, served } = registry(bytes, { stall: new Map([[2, 300]]) });
    const client = createRegistryClient({ fetch, ranges: SLOW, retryDelay: 1, timeout: 50 });
    const descriptor = descriptorOf(bytes);
    expect(equal(await readAll(await client.fetchBlobRange(REF, descriptor)), bytes)).toBe(true);
    expect(served.ranges.filter((r) => r === `bytes=${MiB}-${2 * MiB - 1}`)).toHaveLength(2);
  });

  /** Reads `stream` (bytes, or pieces at offsets) until `least` bytes came, then waits 200 ms. */
  async function readThenStop(stream: ReadableStream<Uint8Array | { bytes: Uint8Array }>, least: number) {
    const reader = stream.getReader();
    let read = 0;
    while (read < least) {
      const value = (await reader.read()).value as Uint8Array | { bytes: Uint8Array };
      read += value instanceof Uint8Array ? value.byteLength : value.bytes.byteLength;
    }
    await new Promise((r) => setTimeout(r, 200));
    return { read, stop: () => reader.cancel() };
  }

  // Ranges of 4 MiB, 3 at a time; the double sends pieces of 256 KiB. The reader takes the first
  // range and 1 MiB of the second, then stops.
  const WIDE = { chunkBytes: 4 * MiB, connections: 3, fastBytesPerSecond: Number.POSITIVE_INFINITY };
  const PIECE = 256 * 1024;

  it("keeps the range being read at most 1 MiB ahead of a reader that stops, those after it whole (in order)", async () => {
    const { bytes } = await blobOf(32 * MiB);
    const { fetch, served } = registry(bytes);
    const client = createRegistryClient({ fetch, ranges: WIDE, retryDelay: 1 });
    const descriptor = descriptorOf(bytes);
    const { read, stop } = await readThenStop(await client.fetchBlobRange(REF, descriptor), 5 * MiB);
    // At most 14.25 MiB: what was read, 1 MiB and a piece of the second range, the third and fourth
    // whole (without the bound on the range being read, all 16 MiB of the four).
    expect(served.ranges).toHaveLength(4);
    expect(served.bytes).toBeLessThanOrEqual(read + MiB + PIECE + 2 * WIDE.chunkBytes);
    await stop();
  });

  it("keeps every range at most 1 MiB ahead of a store that stops taking pieces (at offsets)", async () => {
    const { bytes } = await blobOf(32 * MiB);
    const { fetch, served } = registry(bytes);
    const client = createRegistryClient({ fetch, ranges: WIDE, retryDelay: 1 });
    const descriptor = descriptorOf(bytes);
    const pieces = (await client.fetchBlobSpans(REF, descriptor, [
      [0, 32 * MiB],
    ])) as unknown as ReadableStream<{
      bytes: Uint8Array;
    }>;
    const { read, stop } = await readThenStop(pieces, 5 * MiB);
    // At most 8.75 MiB: what was read, and 1 MiB and a piece of each of the three ranges in flight
    // (without the bound, all 16 MiB of the four).
    expect(served.ranges).toHaveLength(4);
    expect(served.bytes).toBeLessThanOrEqual(read + WIDE.connections * (MiB + PIECE));
    await stop();
  });

  it("holds at most chunkBytes of a rest fetched in one request while its reader stops (the fast path)", async () => {
    const { bytes } = await blobOf(24 * MiB);
    const { fetch, served } = registry(bytes);
    const client = createRegistryClient({
      fetch,
      ranges: { chunkBytes: MiB, fastBytesPerSecond: 0 },
      retryDelay: 1,
    });
    const stream = await client.fetchBlobRange(REF, descriptorOf(bytes));
    const reader = stream.getReader();
    let read = 0;
    while (read < 2 * MiB) read += ((await reader.read()).value as Uint8Array).byteLength;
    await new Promise((r) => setTimeout(r, 100));
    // The first range, what was read of the rest, and at most one range's worth waiting: not 24 MiB.
    expect(served.ranges).toEqual([`bytes=0-${MiB - 1}`, `bytes=${MiB}-${24 * MiB - 1}`]);
    expect(served.bytes).toBeLessThanOrEqual(read + MiB + 256 * 1024);
    await reader.cancel();
  });
});

/** The pieces of `spans` as `fetchBlobSpans` hands them on, and the blob they rebuild. */
async function fetchSpans(
  fetch: typeof globalThis.fetch,
  bytes: Uint8Array,
  spans: [number, number][],
  ranges: RangeOptions,
) {
  const client = createRegistryClient({ fetch, ranges, retryDelay: 1 });
  const descriptor = descriptorOf(bytes);
  const pieces: { offset: number; bytes: Uint8Array }[] = [];
  for await (const piece of (await client.fetchBlobSpans(
    REF,
    descriptor,
    spans,
  )) as unknown as AsyncIterable<{
    offset: number;
    bytes: Uint8Array;
  }>)
    pieces.push({ offset: piece.offset, bytes: piece.bytes.slice() });
  const rebuilt = new Uint8Array(bytes.byteLength);
  const seen = new Uint8Array(bytes.byteLength);
  for (const { offset, bytes: b } of pieces) {
    rebuilt.set(b, offset);
    for (let i = offset; i < offset + b.byteLength; i++) seen[i] = (seen[i] as number) + 1;
  }
  /** Whether every byte of the spans came once, and no other byte came. */
  const exact =
    spans.every(([s, e]) => seen.subarray(s, e).every((n) => n === 1)) &&
    seen.reduce((n, c) => n + c, 0) === spans.reduce((n, [s, e]) => n + e - s, 0);
  const right = spans.every(([s, e]) => equal(rebuilt.subarray(s, e), bytes.subarray(s, e)));
  return { pieces, exact, right };
}

describe("several spans of a blob, pieces handed on as they arrive", () => {
  const spans: [number, number][] = [
    [MiB + 5, 4 * MiB],
    [5 * MiB, 9 * MiB + 77],
    [10 * MiB, 10 * MiB + 1],
  ];

  it("fetches only the spans, each byte once, in ranges side by side whose pieces interleave", async () => {
    const { bytes } = await blobOf(11 * MiB);
    // Each body at 40 MB/s: the ranges ahead have pieces while the first waits for its next.
    const { fetch, served } = registry(bytes, { rate: { bytesPerSecond: 40e6, shared: false } });
    const got = await fetchSpans(fetch, bytes, spans, SLOW);
    expect(got.exact).toBe(true);
    expect(got.right).toBe(true);
    expect(served.bytes).toBe(spans.reduce((n, [s, e]) => n + e - s, 0));
    expect(served.ranges[0]).toBe(`bytes=${MiB + 5}-${2 * MiB + 4}`);
    expect(served.peak).toBe(3);
    // Not in order: a range ahead handed on a piece before the one before it had finished.
    const offsets = got.pieces.map((p) => p.offset);
    expect(offsets.some((o, i) => i > 0 && o < (offsets[i - 1] as number))).toBe(true);
  });

  it("goes on past a window of ranges that all ended while the first of them was late", async () => {
    // The range after the first stalls; the two beside it end and are handed on; then it ends too,
    // and the next window must start although every range of this one is done.
    const { bytes } = await blobOf(6 * MiB);
    const { fetch, served } = registry(bytes, { stall: new Map([[2, 200]]) });
    const got = await fetchSpans(fetch, bytes, [[0, 6 * MiB]], SLOW);
    expect(got.exact && got.right).toBe(true);
    expect(served.ranges).toHaveLength(6);
  });

  it("hands on only the spans' bytes of a whole blob sent for a range (200)", async () => {
    const { bytes } = await blobOf(11 * MiB);
    const { fetch, served } = registry(bytes, { ranges: false });
    const got = await fetchSpans(fetch, bytes, spans, SLOW);
    expect(got.exact && got.right).toBe(true);
    expect(served.ranges).toHaveLength(1);
  });

  it("refuses a whole blob that ends before the last span with SIZE_MISMATCH", async () => {
    const { bytes } = await blobOf(11 * MiB);
    const { fetch } = registry(bytes.subarray(0, 10 * MiB), { ranges: false });
    const error = await failure(fetchSpans(fetch, bytes, spans, SLOW));
    expect(error.code).toBe("SIZE_MISMATCH");
  });

  it("asks a cut range again from where it stopped: no byte fetched twice", async () => {
    const { bytes } = await blobOf(11 * MiB);
    const { fetch, served } = registry(bytes, { cut: new Map([[3, 300_000]]) });
    const got = await fetchSpans(fetch, bytes, spans, SLOW);
    expect(got.exact && got.right).toBe(true);
    expect(served.bytes).toBe(spans.reduce((n, [s, e]) => n + e - s, 0));
  });

  it("fetches spans under two ranges together, or with connections 1, one request each", async () => {
    const { bytes } = await blobOf(11 * MiB);
    const { fetch, served } = registry(bytes);
    const got = await fetchSpans(fetch, bytes, spans, { ...SLOW, connections: 1 });
    expect(got.exact && got.right).toBe(true);
    expect(served.ranges).toEqual(spans.map(([s, e]) => `bytes=${s}-${e - 1}`));
    const few = registry(bytes);
    const small: [number, number][] = [
      [0, 1000],
      [MiB, MiB + 1000],
    ];
    expect((await fetchSpans(few.fetch, bytes, small, SLOW)).exact).toBe(true);
    expect(few.served.ranges).toEqual(["bytes=0-999", `bytes=${MiB}-${MiB + 999}`]);
  });

  it("is offered to a store copying from the registry unless ranges are taken in order or not at all", async () => {
    const { bytes } = await blobOf(MiB);
    const { fetch } = registry(bytes);
    const offered = createRemoteStore(REF, { client: createRegistryClient({ fetch }) });
    expect(typeof offered.fetchSpans).toBe("function");
    for (const ranges of [{ atOffsets: false }, { connections: 1 }, { connections: 1, atOffsets: true }]) {
      const plain = createRemoteStore(REF, { client: createRegistryClient({ fetch, ranges }) });
      expect(plain.fetchSpans, JSON.stringify(ranges)).toBeUndefined();
    }
  });

  it.each([
    [
      "out of order",
      [
        [5, 10],
        [0, 4],
      ],
    ],
    [
      "overlapping",
      [
        [0, 10],
        [5, 20],
      ],
    ],
    ["past the end", [[0, 11 * MiB + 1]]],
    ["empty", [[3, 3]]],
  ])("refuses spans %s with INVALID_ARGUMENT before asking anything", async (_, bad) => {
    const { bytes } = await blobOf(11 * MiB);
    const { fetch, served } = registry(bytes);
    const error = await failure(fetchSpans(fetch, bytes, bad as [number, number][], SLOW));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(served.ranges).toEqual([]);
  });
});

describe("a registry on loopback", () => {
  const loopback = ["localhost:5000", "LocalHost", "127.0.0.1:5000", "127.9.8.7", "[::1]:5000"];
  // Names that only look like loopback reach another machine: ranges as for any registry.
  const remote = ["localhost.example:5000", "127.0.0.1.nip.io", "10.0.0.1:5000", "128.0.0.1", "[::2]:5000"];
  const MANY = { chunkBytes: MiB, fastBytesPerSecond: Number.POSITIVE_INFINITY };

  it.each(loopback)(
    "%s: a large blob in one request, its spans one by one, none offered to a store",
    async (host) => {
      const { bytes } = await blobOf(5 * MiB);
      const { fetch, served } = registry(bytes);
      expect(equal(await fetchAll(fetch, bytes, MANY, `${host}/ns/model`), bytes)).toBe(true);
      expect(served.ranges).toEqual([""]);
      const spans: [number, number][] = [
        [0, 2 * MiB],
        [3 * MiB, 5 * MiB],
      ];
      const client = createRegistryClient({ fetch, ranges: MANY, retryDelay: 1 });
      const descriptor = descriptorOf(bytes);
      let got = 0;
      for await (const piece of await client.fetchBlobSpans(`${host}/ns/model`, descriptor, spans))
        got += piece.bytes.byteLength;
      expect(got).toBe(4 * MiB);
      expect(served.ranges.slice(1)).toEqual([`bytes=0-${2 * MiB - 1}`, `bytes=${3 * MiB}-${5 * MiB - 1}`]);
      expect(client.rangesAtOffsets(`${host}/ns/model`)).toBe(false);
      expect(createRemoteStore(`${host}/ns/model`, { client }).fetchSpans).toBeUndefined();
    },
  );

  it.each(loopback)("%s: in ranges when `connections` is set", async (host) => {
    const { bytes } = await blobOf(5 * MiB);
    const { fetch, served } = registry(bytes);
    expect(equal(await fetchAll(fetch, bytes, { ...MANY, connections: 3 }, `${host}/ns/model`), bytes)).toBe(
      true,
    );
    expect(served.ranges).toHaveLength(5);
    expect(served.ranges[0]).toBe(`bytes=0-${MiB - 1}`);
    const client = createRegistryClient({ fetch, ranges: { connections: 3 } });
    expect(createRemoteStore(`${host}/ns/model`, { client }).fetchSpans).toBeTypeOf("function");
  });

  it.each(remote)("%s is not loopback: in ranges by default", async (host) => {
    const { bytes } = await blobOf(5 * MiB);
    const { fetch, served } = registry(bytes);
    expect(equal(await fetchAll(fetch, bytes, MANY, `${host}/ns/model`), bytes)).toBe(true);
    expect(served.ranges).toHaveLength(5);
    expect(createRegistryClient({ fetch }).rangesAtOffsets(`${host}/ns/model`)).toBe(true);
  });
});
