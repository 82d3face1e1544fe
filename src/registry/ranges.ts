/**
 * One large blob fetched as several `Range` requests at a time, given back as one stream in order.
 *
 * Over the internet one connection is held back by its round trip, per-connection throttling and
 * loss; a model is one to four very large blobs, so fetching layers side by side does not help. Here
 * the first range is fetched alone: a server that answers it with 200 does not serve ranges, and its
 * one response is the blob (nothing else is asked). When that first range came fast (a LAN, loopback:
 * the connection is not what limits), the rest comes in one more request. Otherwise the rest is cut
 * into ranges of `chunkBytes`, `connections` in flight; unless those first `connections` ranges came
 * much faster together than the first alone (what limits is then not one connection but, say, a CPU
 * the registry shares), the rest not yet asked for comes in one request. The range at the head
 * streams through as it arrives and those ahead of it wait in memory; no range holds more than
 * `chunkBytes` unread (its reading pauses until the stream is read), so at most
 * `connections × chunkBytes` bytes are held. A rest in one request is handed on as it arrives.
 * A range whose body is cut is asked again from where it stopped, so no byte is fetched twice.
 * Bytes are not verified here: the store they go into hashes them, in order.
 *
 * `fetchPieces` fetches several spans of a blob (the holes a resumed download still lacks) the same
 * way, but hands on each piece at its offset as it arrives, from whichever range it came: a store
 * writes it there at once, so nothing waits in memory for the ranges before it, and a reload keeps
 * every range that landed. A pull fetches large blobs this way by default (`atOffsets`).
 */
import { OciError } from "../errors.js";
import type { Descriptor } from "../oci/manifest.js";
import type { Reference } from "../reference.js";
import type { BlobPiece, Span } from "../store/types.js";
import { ByteRangeStream } from "../streams.js";
import type { RegistryApi } from "./api.js";
import { isLoopbackHost } from "./hosts.js";
import { discard, responseError } from "./http.js";

/** How a large blob is fetched in ranges (`RegistryClientOptions.ranges`). */
export interface RangeOptions {
  /**
   * Range requests in flight for one blob. Default 8: a 1 GiB Node pull over a 40 ms, 25 MB/s-per-
   * connection link took 9.1–10.1 s with 8 against 13.6–13.9 s with 4 (one stream: 44 s), holding up
   * to 224 MiB RSS in order against 141–159 MiB (bench/README.md, run 8). 1 fetches every blob in
   * one request, the default for a registry on loopback (`rangesFor`).
   */
  connections?: number;
  /** Bytes per range request. Default 16 MiB. A blob under twice this comes in one request. */
  chunkBytes?: number;
  /**
   * A first range that arrived faster than this (bytes per second) shows a connection that does not
   * limit: the rest comes in one request. Default 200 MB/s; by default the rest comes in one request
   * too when the reader seldom waited for the first range (what limits is the reader).
   */
  fastBytesPerSecond?: number;
  /** Times one range is asked again after its body was cut. Default 3. */
  retries?: number;
  /**
   * A pull hands each range's bytes to the store as they arrive, to be written at their offsets
   * (`fetchBlobSpans`, a `SpanSource`): a reload or a killed process keeps every range that landed,
   * and the next pull asks only for the holes. Default true (with `connections` over 1). False has
   * the store take the blob in order, the ranges ahead of it held in memory (up to `connections ×
   * chunkBytes`, 128 MiB at the defaults), and a resume fetch again what had come past its last
   * checkpoint. Neither is the faster over a 40 ms, 25 MB/s-per-connection link on this project's
   * machine (1 GiB in Node: 9.51 s at offsets against 9.98 s in order in run 10, 9.33 s against
   * 8.29 s in run 9; 256 MiB in Chromium into OPFS: 7.06 s against 6.76 s in run 9); on loopback in
   * Node in order is (5.46 s against 4.90 s, run 10; bench/README.md).
   */
  atOffsets?: boolean;
}

/**
 * How much faster than one connection the first window of ranges must come, all together, for the
 * rest to be fetched in ranges too.
 */
const PAYS = 1.5;

/** Bytes the range being read may hold ahead of its reader. */
const READ_AHEAD = 1024 * 1024;

const DEFAULTS = {
  connections: 8,
  chunkBytes: 16 * 1024 * 1024,
  fastBytesPerSecond: 200e6,
  retries: 3,
  atOffsets: true,
} satisfies Required<RangeOptions>;

/**
 * The range options for blobs of `registry`: as given, but one request per blob from a registry on
 * loopback (localhost, 127.0.0.0/8, [::1]) unless `connections` was set. On the same machine no
 * network limits one connection; more connections only compete with the reader (and the registry)
 * for the CPU, and judging the first range cannot always tell: on this project's 2-core machine a
 * ranged pull from loopback took 1.03–1.15× one stream's time in a warm Chromium page, ~1.8× when a
 * fresh page misjudged the first range, and 1.13–1.61× in a minimal Node process (bench/README.md).
 */
export function rangesFor(registry: string, options: RangeOptions): RangeOptions {
  if (options.connections !== undefined || !isLoopbackHost(registry)) return options;
  return { ...options, connections: 1 };
}

/** Whether a pull should hand a blob's ranges to its store as they arrive (`atOffsets`). */
export function placesRanges(options: RangeOptions = {}): boolean {
  const { connections, atOffsets } = { ...DEFAULTS, ...options };
  return atOffsets && connections > 1;
}

/** Whether a blob range is long enough to be fetched in several requests. */
export function wantsRanges(length: number, options: RangeOptions = {}): boolean {
  const { connections, chunkBytes } = { ...DEFAULTS, ...options };
  return connections > 1 && length >= 2 * chunkBytes;
}

/** One range: the bytes that arrived and wait to be read, and how it ended. */
class Part {
  readonly pieces: Uint8Array[] = [];
  received = 0;
  /** Bytes handed on. */
  taken = 0;
  /** Bytes in `pieces`, not read yet. */
  buffered = 0;
  /** Its request was started. */
  filling = false;
  done = false;
  /** When its first answer came (ms: a round trip is no measure of the link's rate), and its last byte. */
  answeredAt = 0;
  doneAt = 0;
  /** Milliseconds its body waited for the reader to make room: time the network was not the limit. */
  held = 0;
  /** Milliseconds the reader waited for its bytes: time the network was the limit. */
  starved = 0;
  error: unknown;
  #wake: (() => void) | undefined;
  #drained: (() => void) | undefined;

  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  get size(): number {
    return this.end - this.start;
  }

  /** Resolves when something happened (bytes, the end, an error). */
  changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  add(piece: Uint8Array): void {
    this.pieces.push(piece);
    this.received += piece.byteLength;
    this.buffered += piece.byteLength;
    this.notify();
  }

  take(): Uint8Array | undefined {
    const piece = this.pieces.shift();
    if (piece) {
      this.buffered -= piece.byteLength;
      this.taken += piece.byteLength;
      const drained = this.#drained;
      this.#drained = undefined;
      drained?.();
    }
    return piece;
  }

  /** Resolves once fewer than `limit` bytes wait to be read: the reader, not the network, sets the pace. */
  async room(limit: number): Promise<void> {
    const since = Date.now();
    while (this.buffered >= limit) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }
    this.held += Date.now() - since;
  }
}

/**
 * A failure worth asking the range again for: the network or a stall, not an answer. The transport
 * hands every failure on as an `OciError`: a body cut in the middle ("terminated") as `NETWORK`.
 */
function retryable(error: unknown): boolean {
  return error instanceof OciError && (error.code === "NETWORK" || error.code === "TIMEOUT");
}

/** Options of `fetchInRanges` and `fetchPieces`. */
type FetchRangesOptions = RangeOptions & { signal?: AbortSignal | undefined; action: string };

/**
 * `length` bytes of a blob from `offset`, fetched in ranges as the module comment says, as one
 * stream in order. Errors are `OciError`s: `SIZE_MISMATCH` for a range of the wrong length,
 * `REGISTRY_ERROR` for a server that stops serving ranges half-way.
 */
export async function fetchInRanges(
  api: RegistryApi,
  ref: Reference,
  descriptor: Pick<Descriptor, "digest" | "size">,
  offset: number,
  length: number,
  options: FetchRangesOptions,
): Promise<ReadableStream<Uint8Array>> {
  const ranges = await inRanges(api, ref, descriptor, [[offset, offset + length]], options, false);
  if (ranges.whole) {
    return ranges.whole
      .pipeThrough(new ByteRangeStream(offset))
      .pipeThrough(
        new ByteRangeStream(
          0,
          length,
          (received) =>
            new OciError(
              "SIZE_MISMATCH",
              `Cannot ${options.action}: the registry sent ${received} of ${length} bytes`,
            ),
        ),
      );
  }
  return streamOf(ranges, (piece) => piece.bytes);
}

/**
 * The bytes of `spans` of a blob (sorted, apart, inside it), fetched in ranges as the module comment
 * says, each piece at its offset in the order it arrives: the pieces of one range come in order,
 * those of different ranges interleave. A server that ignores `Range` sends the whole blob once,
 * and only the spans' bytes are handed on. Errors as `fetchInRanges`'s.
 */
export async function fetchPieces(
  api: RegistryApi,
  ref: Reference,
  descriptor: Pick<Descriptor, "digest" | "size">,
  spans: readonly Span[],
  options: FetchRangesOptions,
): Promise<ReadableStream<BlobPiece>> {
  const last = spans.at(-1);
  if (!last) return new ReadableStream({ start: (c) => c.close() });
  const ranges = await inRanges(api, ref, descriptor, spans, options, true);
  if (ranges.whole) return ranges.whole.pipeThrough(clipToSpans(spans, options.action));
  return streamOf(ranges, (piece) => piece);
}

/** The pieces `next` gives, as a stream that asks for one only when read; cancelling stops them all. */
function streamOf<T>(
  ranges: { next: () => Promise<BlobPiece | undefined>; cancel: (reason: unknown) => void },
  as: (piece: BlobPiece) => T,
): ReadableStream<T> {
  return new ReadableStream<T>(
    {
      async pull(controller) {
        const piece = await ranges.next();
        if (piece) controller.enqueue(as(piece));
        else controller.close();
      },
      cancel: ranges.cancel,
    },
    { highWaterMark: 0 },
  );
}

/** The whole blob cut down to the bytes of `spans`, as pieces at their offsets. */
function clipToSpans(spans: readonly Span[], action: string): TransformStream<Uint8Array, BlobPiece> {
  const end = (spans.at(-1) as Span)[1];
  let at = 0;
  return new TransformStream({
    transform(chunk, controller) {
      for (const [start, stop] of spans) {
        const from = Math.max(start, at);
        const to = Math.min(stop, at + chunk.byteLength);
        if (from < to) controller.enqueue({ offset: from, bytes: chunk.subarray(from - at, to - at) });
      }
      at += chunk.byteLength;
      if (at >= end) controller.terminate();
    },
    flush() {
      if (at < end)
        throw new OciError("SIZE_MISMATCH", `Cannot ${action}: the registry sent ${at} bytes of ${end}`);
    },
  });
}

/**
 * The machinery both share: the first range alone, then ranges or the rest in one request over
 * `spans`. Either the server ignored `Range` (`whole`: its one response, the blob from byte 0), or
 * `next` gives the next piece: in order (`placed` false: those ahead wait in memory), or from
 * whichever range has one (`placed`).
 */
async function inRanges(
  api: RegistryApi,
  ref: Reference,
  descriptor: Pick<Descriptor, "digest" | "size">,
  spans: readonly Span[],
  options: FetchRangesOptions,
  placed: boolean,
): Promise<
  | { whole: ReadableStream<Uint8Array> }
  | { whole?: undefined; next: () => Promise<BlobPiece | undefined>; cancel: (reason: unknown) => void }
> {
  const { connections, chunkBytes, fastBytesPerSecond, retries } = { ...DEFAULTS, ...options };
  const { action } = options;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const [first] = spans as [Span, ...Span[]];

  const request = (start: number, until: number) =>
    api.request(ref, `/blobs/${descriptor.digest}`, {
      action,
      headers: { range: `bytes=${start}-${until - 1}` },
      signal,
    });
  /** A 206 for exactly `[start, until)`, or an error (the response is discarded). */
  const checked = async (response: Response, start: number, until: number): Promise<Response> => {
    if (!response.ok) throw await responseError(response, action);
    const range = /^bytes (\d+)-(\d+)\//.exec(response.headers.get("content-range") ?? "");
    const sent = response.headers.get("content-length");
    if (response.status !== 206) {
      discard(response);
      throw new OciError("REGISTRY_ERROR", `Cannot ${action}: the registry stopped serving byte ranges`);
    }
    if (
      (range && (Number(range[1]) !== start || Number(range[2]) !== until - 1)) ||
      (sent !== null && Number(sent) !== until - start)
    ) {
      discard(response);
      throw new OciError(
        "SIZE_MISMATCH",
        `Cannot ${action}: asked for bytes ${start}-${until - 1}, the registry sent ${range ? `${range[1]}-${range[2]}` : `${sent} bytes`}`,
      );
    }
    return response;
  };

  /** Reads a range into its part, asking again from where a cut body stopped. */
  const fill = async (part: Part, first?: Response): Promise<void> => {
    let response = first;
    for (let attempt = 0; ; attempt++) {
      try {
        const from = part.start + part.received;
        response ??= await checked(await request(from, part.end), from, part.end);
        part.answeredAt ||= Date.now();
        const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
        response = undefined;
        for await (const piece of body) {
          if (part.received + piece.byteLength > part.size) {
            throw new OciError("SIZE_MISMATCH", `Cannot ${action}: a range ran past its end`);
          }
          part.add(piece);
          // The range being read keeps a little ahead of its reader; those after it, a whole range
          // (placed: every range is being read).
          await part.room(placed || part === parts[next] ? READ_AHEAD : chunkBytes);
        }
        if (part.received < part.size) throw new OciError("NETWORK", `Cannot ${action}: a range ended short`);
        part.done = true;
        part.doneAt = Date.now();
        part.notify();
        return;
      } catch (error) {
        if (signal.aborted || !retryable(error) || attempt >= retries) {
          part.error = error;
          part.notify();
          return;
        }
      }
    }
  };

  // The first range alone: does the server serve ranges, and how fast is one connection?
  const head = new Part(first[0], Math.min(first[1], first[0] + chunkBytes));
  const firstResponse = await request(head.start, head.end);
  // Its speed is counted from its answer (a round trip is no measure of the link's rate), less the
  // time it waited for the reader: a reader slower than one connection (hashing, storing) needs no
  // more connections.
  const started = Date.now();
  if (firstResponse.ok && firstResponse.status === 200) {
    // Range ignored: this response is the whole blob.
    return { whole: firstResponse.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }) };
  }
  const parts: Part[] = [head];
  head.filling = true;
  void fill(head, await checked(firstResponse, head.start, head.end));

  let next = 0; // the part the stream reads
  let planned = false;
  let window = connections;
  /** The first window of ranges, while it tells whether ranges pay (see `judge`). */
  let probe: Part[] = [];
  let headRate = 0;
  /**
   * Once the first window of ranges is in: unless they came at least `PAYS` times as fast together
   * as the first range alone, what limits is not one connection (a CPU shared with the registry, a
   * link shared by all connections), and the rest not yet asked for comes in one request.
   */
  const judge = () => {
    if (probe.length === 0 || !probe.every((p) => p.done)) return;
    const bytes = probe.reduce((n, p) => n + p.size, 0);
    const first = Math.min(...probe.map((p) => p.answeredAt));
    const last = Math.max(...probe.map((p) => p.doneAt));
    probe = [];
    if (bytes / Math.max((last - first) / 1000, 1e-3) >= PAYS * headRate) return;
    const rest = parts.findIndex((p, i) => i >= next && !p.filling);
    if (rest >= 0) parts.splice(rest, parts.length - rest, ...joined(parts.slice(rest)));
    window = 1;
  };
  /** After the first range: the rest in one request, or in ranges; keeps `connections` in flight. */
  const launch = () => {
    if (!planned && head.done) {
      planned = true;
      const elapsed = Date.now() - started;
      const seconds = Math.max((elapsed - head.held) / 1000, 1e-3);
      headRate = head.size / seconds;
      // Fast by its rate; or, unless a rate was asked for, because the reader seldom waited for it
      // (the reader is what limits: more connections would only compete with it for the CPU).
      const auto = options.fastBytesPerSecond === undefined;
      const fast = headRate >= fastBytesPerSecond || (auto && head.starved < elapsed / 2);
      // Fast: the rest in one request, started when the reader comes to it (nothing to overlap).
      if (fast) window = 1;
      const step = fast ? Number.POSITIVE_INFINITY : chunkBytes;
      for (const [start, end] of [[head.end, first[1]], ...spans.slice(1)])
        for (let at = start; at < end; at += step) parts.push(new Part(at, Math.min(end, at + step)));
      if (auto && !fast) probe = parts.slice(1, 1 + window);
    }
    judge();
    for (const part of parts.slice(next, next + window)) {
      // One at a time, the rest is read as it arrives (`readRest`), not gathered.
      if (part.filling || window === 1) continue;
      part.filling = true;
      void fill(part);
    }
  };

  /** The rest in one request, and its body being read by `readRest`. */
  let restPart: Part | undefined;
  let rest: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let restRetries = 0;
  /**
   * The rest of the blob, once it comes in one request: handed on chunk by chunk as the body gives
   * them (no queue, no copy, as a plain download), and asked again from where a cut body stopped.
   */
  const readRest = async (part: Part): Promise<Uint8Array | undefined> => {
    for (;;) {
      try {
        if (!rest) {
          const from = part.start + part.received;
          if (from >= part.end) return undefined;
          const response = await checked(await request(from, part.end), from, part.end);
          rest = (response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })).getReader();
        }
        const { done, value } = await rest.read();
        if (done) {
          rest = undefined;
          if (part.received < part.size)
            throw new OciError("NETWORK", `Cannot ${action}: a range ended short`);
          return undefined;
        }
        if (part.received + value.byteLength > part.size) {
          throw new OciError("SIZE_MISMATCH", `Cannot ${action}: a range ran past its end`);
        }
        part.received += value.byteLength;
        return value;
      } catch (error) {
        rest = undefined;
        if (signal.aborted || !retryable(error) || restRetries++ >= retries) throw error;
      }
    }
  };

  /** Fails the fetch: every range still in flight is stopped. */
  const fail = (error: unknown): never => {
    stop.abort();
    throw error;
  };
  /** The next piece of the rest in one request, or undefined once it is all in. */
  const restPiece = async (part: Part): Promise<BlobPiece | undefined> => {
    restPart = part;
    part.filling = true;
    const bytes = await readRest(part).catch(fail);
    if (bytes) return { offset: part.start + part.received - bytes.byteLength, bytes };
    part.done = true;
    return undefined;
  };
  /** Waits until one of `parts` has news; the time counts as the reader's wait for `reading`. */
  const wait = async (reading: Part, parts: Part[]) => {
    const since = Date.now();
    await Promise.race(parts.map((p) => p.changed()));
    reading.starved += Date.now() - since;
  };

  /** The next piece in order: the range at the head, while those ahead of it wait. */
  const inOrder = async (): Promise<BlobPiece | undefined> => {
    for (;;) {
      launch();
      const part = parts[next];
      if (!part) return undefined;
      if (part === restPart || (window === 1 && !part.filling)) {
        const piece = await restPiece(part);
        if (piece) return piece;
        next++;
        continue;
      }
      const offset = part.start + part.taken;
      const bytes = part.take();
      if (bytes) return { offset, bytes };
      if (part.error !== undefined) fail(part.error);
      if (part.done) next++;
      else await wait(part, [part]);
    }
  };

  /** The next piece from whichever range has one; `next` is the first range not all handed on. */
  const anyOrder = async (): Promise<BlobPiece | undefined> => {
    for (;;) {
      // Past the ranges all handed on first: `launch` keeps `connections` in flight from `next`.
      while (parts[next]?.done && parts[next]?.buffered === 0) next++;
      launch();
      const part = parts[next];
      if (!part) return undefined;
      const filling = parts.slice(next).filter((p) => p.filling && p !== restPart);
      for (const p of filling) {
        const offset = p.start + p.taken;
        const bytes = p.take();
        if (bytes) return { offset, bytes };
      }
      const failed = filling.find((p) => p.error !== undefined);
      if (failed) fail(failed.error);
      if (part === restPart || (window === 1 && !part.filling)) {
        const piece = await restPiece(part);
        if (piece) return piece;
        next++;
        continue;
      }
      // Not empty: a range at `next` that is not the rest is filling (`launch` started it).
      await wait(part, filling);
    }
  };

  return { next: placed ? anyOrder : inOrder, cancel: (reason) => stop.abort(reason) };
}

/** Ranges not yet asked for, joined where one ends at the next's start: each asked in one request. */
function joined(parts: Part[]): Part[] {
  const out: Part[] = [];
  for (const part of parts) {
    const last = out.at(-1);
    if (last && last.end === part.start) out[out.length - 1] = new Part(last.start, part.end);
    else out.push(new Part(part.start, part.end));
  }
  return out;
}
