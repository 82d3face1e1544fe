// Test blobs and sources, web APIs only (used in Node, Chromium and workerd).
import type { BlobPiece, BlobSource, Descriptor, Span, SpanSource } from "../../src/index.js";

export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  return bytes;
}

export async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export async function blobOf(size: number, mediaType = "application/octet-stream") {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType, digest: await sha256(bytes), size } as Descriptor };
}

/** A stream of `bytes` in chunks; when `failAt` is set it errors after that many bytes (a cut connection). */
export function chunked(
  bytes: Uint8Array,
  options: { chunk?: number; failAt?: number } = {},
): ReadableStream<Uint8Array> {
  const chunk = options.chunk ?? 64 * 1024;
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (options.failAt !== undefined && at >= options.failAt) {
        controller.error(new TypeError("connection reset (test)"));
        return;
      }
      if (at >= bytes.byteLength) return controller.close();
      const end = Math.min(bytes.byteLength, at + chunk, options.failAt ?? Number.POSITIVE_INFINITY);
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  });
}

/** A source that records the offsets it was asked for and the bytes it handed out. */
export function countingSource(bytes: Uint8Array, failAt?: number) {
  const calls: number[] = [];
  let served = 0;
  const source: BlobSource = async (offset) => {
    calls.push(offset);
    const rest = bytes.subarray(offset);
    return chunked(rest, failAt === undefined ? {} : { failAt: Math.max(0, failAt - offset) }).pipeThrough(
      new TransformStream({
        transform(c, controller) {
          served += c.byteLength;
          controller.enqueue(c);
        },
      }),
    );
  };
  return { source, calls, served: () => served };
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The parts one after another, in one array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * A `SpanSource` over `bytes`: each span asked for is cut into ranges of `range` bytes, `ways` of
 * them at a time, their chunks interleaved as ranges fetched side by side arrive. `failAfter` errors
 * it after that many bytes (a cut connection); `stray` is handed out after `stray.after` bytes, as a
 * source that sends what it was not asked for would.
 */
export function spanSource(
  bytes: Uint8Array,
  options: {
    range?: number;
    ways?: number;
    chunk?: number;
    failAfter?: number;
    stray?: { after: number; piece: BlobPiece };
    /** Milliseconds before each piece of `spans` (none by default). */
    delayMs?: number;
  } = {},
) {
  const { range = 256 * 1024, ways = 3, chunk = 32 * 1024, failAfter, delayMs } = options;
  const asked: Span[][] = [];
  const from: number[] = [];
  let served = 0;
  let stray = options.stray;
  const source: SpanSource = {
    from: async (offset) => {
      from.push(offset);
      return chunked(bytes.subarray(offset)).pipeThrough(
        new TransformStream({
          transform(c, controller) {
            served += c.byteLength;
            controller.enqueue(c);
          },
        }),
      );
    },
    spans: async (spans) => {
      asked.push([...spans]);
      const queue = spans.flatMap(([start, end]) => {
        const out: { at: number; end: number }[] = [];
        for (let at = start; at < end; at += range) out.push({ at, end: Math.min(end, at + range) });
        return out;
      });
      const active = queue.splice(0, ways);
      let turn = 0;
      return new ReadableStream<BlobPiece>({
        async pull(controller) {
          if (delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, delayMs));
          if (failAfter !== undefined && served >= failAfter) {
            controller.error(new TypeError("connection reset (test)"));
            return;
          }
          if (stray && served >= stray.after) {
            controller.enqueue(stray.piece);
            stray = undefined;
            return;
          }
          const r = active[turn++ % Math.max(active.length, 1)];
          if (!r) return controller.close();
          const end = Math.min(r.end, r.at + chunk, r.at + (failAfter ?? Number.POSITIVE_INFINITY) - served);
          controller.enqueue({ offset: r.at, bytes: bytes.slice(r.at, end) });
          served += end - r.at;
          r.at = end;
          if (r.at >= r.end) {
            active.splice(active.indexOf(r), 1);
            const next = queue.shift();
            if (next) active.push(next);
          }
        },
      });
    },
  };
  return { source, asked, from, served: () => served };
}
