import { describe, expect, it } from "vitest";
import { ByteRangeStream, readAll, readAtMost } from "../../src/streams.js";

/** A stream of the bytes 0..n-1 in chunks of the given sizes. */
function chunked(...sizes: number[]): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let at = 0;
  let i = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const size = sizes[i++];
      if (size === undefined) return controller.close();
      controller.enqueue(Uint8Array.from({ length: size }, (_, k) => at + k));
      at += size;
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

describe("ByteRangeStream", () => {
  it.each([
    ["inside one chunk", [10], 2, 5],
    ["across chunk edges", [3, 3, 3, 3], 2, 10],
    ["on chunk edges", [4, 4, 4], 4, 8],
    ["to the end (a skip)", [5, 5], 3, undefined],
    ["nothing skipped", [5, 5], 0, undefined],
    ["an empty window", [5, 5], 4, 4],
  ])("passes exactly the window %s", async (_, sizes, start, end) => {
    const { stream } = chunked(...sizes);
    const total = sizes.reduce((a, b) => a + b, 0);
    const bytes = await readAll(stream.pipeThrough(new ByteRangeStream(start, end)));
    expect([...bytes]).toEqual(range(start, Math.min(end ?? total, total)));
  });

  it("stops reading the source once the window is passed", async () => {
    const source = chunked(4, 4, 4, 4);
    await readAll(source.stream.pipeThrough(new ByteRangeStream(1, 6)));
    expect(source.cancelled()).toBe(true);
  });

  it("errors with onShort's error, given the bytes that arrived, when the source ends early", async () => {
    const { stream } = chunked(3, 3);
    const short = stream.pipeThrough(new ByteRangeStream(2, 10, (n) => new Error(`got ${n}`)));
    await expect(readAll(short)).rejects.toThrow("got 4");
  });

  it("ends quietly on a short source without onShort", async () => {
    const { stream } = chunked(3);
    expect([...(await readAll(stream.pipeThrough(new ByteRangeStream(1, 10))))]).toEqual([1, 2]);
  });
});

describe("readAtMost", () => {
  it("reads a stream of exactly the limit", async () => {
    expect([...((await readAtMost(chunked(2, 3).stream, 5)) ?? [])]).toEqual(range(0, 5));
  });

  it("gives undefined one byte past the limit and cancels the rest unread", async () => {
    const source = chunked(3, 3, 100);
    expect(await readAtMost(source.stream, 5)).toBeUndefined();
    expect(source.cancelled()).toBe(true);
  });
});
