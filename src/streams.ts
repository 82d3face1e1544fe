/**
 * Byte-stream helpers every layer uses: cut a window out of a stream, read a stream whole (with or
 * without a cap). Web streams only.
 */

/**
 * Passes bytes `[start, end)` of the stream and ends there, cancelling the rest of the source.
 * `end` defaults to the end of the stream, so `new ByteRangeStream(n)` drops the first `n` bytes.
 * When the source ends before `end` and `onShort` is given, the stream errors with what it returns
 * (given the bytes of the range that did arrive).
 */
export class ByteRangeStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(start: number, end = Number.POSITIVE_INFINITY, onShort?: (received: number) => Error) {
    let at = 0;
    super({
      transform(chunk, controller) {
        const from = Math.max(start - at, 0);
        const to = Math.min(end - at, chunk.byteLength);
        at += chunk.byteLength;
        if (from < to) controller.enqueue(chunk.subarray(from, to));
        if (at >= end) controller.terminate();
      },
      flush() {
        if (onShort && at < end) throw onShort(Math.max(at - start, 0));
      },
    });
  }
}

/** The whole stream as one array. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The whole stream as one array when it holds at most `limit` bytes; past that, undefined, and the
 * rest is cancelled unread (so a hostile peer cannot make us buffer more than `limit`).
 */
export async function readAtMost(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    length += part.value.byteLength;
    if (length > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(part.value);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
