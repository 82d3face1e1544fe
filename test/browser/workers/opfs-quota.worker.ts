// A dedicated worker (the OPFS store writes through sync access handles here, in this realm): the
// disk fills up part-way through a push of ranges side by side, then has room again.
import { createOpfsStore } from "../../../src/index.js";
import { blobOf, spanSource } from "../../support/blobs.js";

type Write = (bytes: Uint8Array, options: { at: number }) => number;
const proto = (globalThis as unknown as { FileSystemSyncAccessHandle: { prototype: { write: Write } } })
  .FileSystemSyncAccessHandle.prototype;
const write = proto.write;

async function run() {
  const KiB = 1024;
  const name = `quota-${crypto.randomUUID()}`;
  const options = { chunkSize: 64 * KiB, checkpointBytes: 64 * KiB };
  const { bytes, descriptor } = await blobOf(1024 * KiB + 3);
  // Chromium's answer to a write the quota cannot hold: its error code as the count written.
  let room = 300 * KiB;
  proto.write = function (this: unknown, chunk, at) {
    if (chunk.byteLength > room) return 2 ** 32 - 8;
    room -= chunk.byteLength;
    return write.call(this, chunk, at);
  };
  const ranges = () => spanSource(bytes, { range: 256 * KiB, ways: 4, chunk: 64 * KiB }).source;
  const first = await createOpfsStore(name, options)
    .push(descriptor, ranges())
    .then(
      () => "stored",
      (error: { code?: string }) => error.code,
    );
  proto.write = write;
  const again = await createOpfsStore(name, options)
    .push(descriptor, ranges())
    .then(
      () => "stored",
      (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
    );
  return { first, again };
}

run().then(
  (report) => postMessage(report),
  (error: unknown) => postMessage({ error: String(error) }),
);
