// Runs in a window or a dedicated worker: pushes a blob into OPFS in small chunks, cut off once and
// resumed, and reports how the ingest was laid out on disk (piece files) and what was read back.
import { createOpfsStore } from "../../src/index.js";
import { syncFiles } from "../../src/store/opfs-sync.js";
import { blobOf, countingSource, readAll } from "../support/blobs.js";

export interface IngestReport {
  pieces: number;
  resumedFrom: number;
  equal: boolean;
  firstError: string | undefined;
  /** A write through the sync-access-handle writer gave its bytes back, unchanged, for reuse. */
  givenBack: boolean;
}

async function writeGivesBack(name: string): Promise<boolean> {
  const files = await syncFiles();
  if (!files) return false;
  const root = await navigator.storage.getDirectory();
  const file = await root.getFileHandle(`${name}-given-back`, { create: true });
  await files.open(name, file, 0);
  const back = await files.write(name, 0, new Uint8Array(4096).fill(7));
  await files.close(name);
  const written = new Uint8Array(await (await file.getFile()).arrayBuffer());
  await root.removeEntry(file.name);
  return back.byteLength === 4096 && back.every((b) => b === 7) && written.every((b) => b === 7);
}

async function pieceCount(store: string, digest: string): Promise<number> {
  const root = await navigator.storage.getDirectory();
  const top = await root.getDirectoryHandle("oci-model-loader");
  const ingest = await (await top.getDirectoryHandle(store)).getDirectoryHandle("ingest");
  let count = 0;
  for await (const _ of (await ingest.getDirectoryHandle(digest.replace(":", "-"))).keys()) count++;
  return count;
}

export async function ingestAndReport(): Promise<IngestReport> {
  const name = `ingest-${crypto.randomUUID()}`;
  const options = { chunkSize: 256 * 1024, checkpointBytes: 256 * 1024 }; // a record after every write
  const { bytes, descriptor } = await blobOf(3 * 1024 * 1024 + 5);
  const firstError = await createOpfsStore(name, options)
    .push(descriptor, countingSource(bytes, 2 * 1024 * 1024 + 77).source)
    .then(
      () => undefined,
      (error: { code?: string }) => error.code,
    );
  const store = createOpfsStore(name, options);
  const result = await store.push(descriptor, countingSource(bytes).source);
  const back = await readAll(await store.fetch(descriptor));
  return {
    pieces: await pieceCount(name, descriptor.digest),
    resumedFrom: result.resumedFrom,
    equal: back.byteLength === bytes.byteLength && back.every((b, i) => b === bytes[i]),
    firstError,
    givenBack: await writeGivesBack(name),
  };
}
