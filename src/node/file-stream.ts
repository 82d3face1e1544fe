import { open } from "node:fs/promises";
import { storageError } from "../store/guard.js";

/**
 * 64 KiB reads, as Node's own file streams make. Each read is a new buffer, and V8 frees big ones
 * late: pushing 1 GiB peaked at 261–330 MiB RSS with 1 MiB reads, at 174–197 MiB with 64 KiB
 * reads, at the same speed.
 */
const CHUNK = 64 * 1024;

/**
 * Bytes `[offset, offset + length)` of a file as a pull-based web stream: one read per pull, so
 * memory stays at one chunk however slow the consumer (Node 20's `Readable.toWeb` reads ahead
 * without bound).
 */
export function fileStream(path: string, offset: number, length: number): ReadableStream<Uint8Array> {
  let position = offset;
  const end = offset + length;
  let file: Awaited<ReturnType<typeof open>> | undefined;
  const close = async () => {
    const handle = file;
    file = undefined;
    await handle?.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (position >= end) {
            await close();
            return controller.close();
          }
          file ??= await open(path, "r");
          const buffer = new Uint8Array(Math.min(CHUNK, end - position));
          const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, position);
          if (bytesRead === 0) throw new Error(`it ended at byte ${position}, before ${end}`);
          position += bytesRead;
          controller.enqueue(bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead));
        } catch (error) {
          await close().catch(() => {});
          // A local file, never the network: a file cut short while it is packed, a disk error.
          controller.error(storageError(error, `read ${path}`));
        }
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  );
}
