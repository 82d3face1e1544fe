/**
 * The files of archive layers and of files compressed as a whole, found while the layer's bytes pass
 * into the store (`PushOptions.tap`), checked and hashed in the same pass:
 *
 * - an uncompressed tar's files stay where they are: each is a byte range of the stored layer
 *   (`ModelFileInfo.layer`), located and checked by `TarLocator`, so nothing is copied, hashed
 *   again or read back;
 * - a compressed tar's files, and a file compressed as a whole, are hashed while the layer streams,
 *   then stored as blobs of their own in one more pass over the stored layer (`storeEntries`).
 *
 * Nothing of a layer is recorded before its digest matched: the pull writes the record last.
 */

import { type ArchiveLimits, type Compression, inflate, walkTar } from "../archive/tar.js";
import { TarLocator } from "../archive/tar-locate.js";
import { type CreateHasher, digestStream, parseDigest } from "../digest/hasher.js";
import type { Store } from "../store/types.js";
import { isWeightPath } from "../tensors/files.js";
import type { PullEvent } from "./events.js";
import type { PlannedLayer } from "./layers.js";
import { fileBlob, type ModelFileInfo } from "./record.js";

/** Reads one layer's bytes as they are written, in order from the first. */
export interface LayerReader {
  write(bytes: Uint8Array): Promise<void>;
  /** Every byte was written: the layer's files, once all of them checked out. */
  close(): Promise<ModelFileInfo[]>;
  /** The layer will not be read to its end (the push failed or was stopped): later writes are let through. */
  abort(reason?: unknown): void;
}

const describe = (layer: PlannedLayer) => `layer ${layer.descriptor.digest} (${layer.descriptor.mediaType})`;

/** True for a layer whose files are found while it streams: a tar, or a file compressed as a whole. */
export function isUnpacked(layer: PlannedLayer): boolean {
  return layer.archive || layer.compression !== undefined;
}

/**
 * A reader of an archive layer (`layer.archive`) or of a file layer compressed as a whole, whose
 * `file` is the one file it becomes.
 */
export function layerReader(
  layer: PlannedLayer,
  createHasher: CreateHasher,
  limits: ArchiveLimits = {},
  file?: ModelFileInfo,
): LayerReader {
  if (layer.archive && !layer.compression) return inPlaceReader(layer, limits);
  const what = describe(layer);
  const algorithm = parseDigest(layer.descriptor.digest).algorithm;
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const writer = pipe.writable.getWriter();
  const hashed: ModelFileInfo[] = [];
  let read: Promise<unknown>;
  if (!layer.archive) {
    const compression = layer.compression as Compression;
    read = (async () => {
      let size = 0;
      const counted = inflate(pipe.readable, compression, what, limits.maxTotalBytes).pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            size += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
      );
      const digest = await digestStream(counted, createHasher, algorithm);
      hashed.push({ ...(file as ModelFileInfo), digest, size });
    })();
  } else {
    read = walkTar(pipe.readable, {
      what,
      compression: layer.compression,
      ...limits,
      onFile: async (entry, body) => {
        const digest = await digestStream(body, createHasher, algorithm);
        hashed.push({
          path: entry.path,
          digest,
          size: entry.size,
          mediaType: "application/octet-stream",
          weight: isWeightPath(entry.path),
        });
      },
    });
  }
  read.catch(() => {});

  // Once aborted, bytes still arriving are let through unread: the push they belong to goes on (or
  // stops) on its own, and keeps what arrived for a resume.
  let aborted = false;
  return {
    async write(bytes) {
      if (aborted) return;
      try {
        // The walker keeps what it is given past this call: a copy, as the bytes are only lent.
        await writer.write(bytes.slice());
      } catch (cause) {
        if (aborted) return;
        await read; // its own error, when it stopped reading
        throw cause;
      }
    },
    async close() {
      await writer.close().catch(() => {});
      await read;
      return hashed;
    },
    abort(reason) {
      aborted = true;
      writer.abort(reason).catch(() => {});
    },
  };
}

/**
 * An uncompressed tar's reader: its files stay where they are, each a byte range of the stored
 * layer, which the layer's digest verifies. Only headers are read (`TarLocator`), synchronously, so
 * the layer's bytes pass without a copy, a second hash or a stream hop.
 */
function inPlaceReader(layer: PlannedLayer, limits: ArchiveLimits): LayerReader {
  const locator = new TarLocator(describe(layer), limits);
  let aborted = false;
  return {
    async write(bytes) {
      if (!aborted) locator.write(bytes);
    },
    async close() {
      const { digest, size } = layer.descriptor;
      return locator.end().map((at) => ({
        path: at.path,
        size: at.size,
        mediaType: "application/octet-stream",
        weight: isWeightPath(at.path),
        layer: { digest, size, offset: at.offset },
      }));
    },
    abort() {
      aborted = true;
    },
  };
}

/** Reads a layer already in the store (no push streamed it): one pass over its stored bytes. */
export async function readStoredLayer(
  store: Store,
  layer: PlannedLayer,
  reader: LayerReader,
): Promise<ModelFileInfo[]> {
  try {
    for await (const chunk of await store.fetch(layer.descriptor)) await reader.write(chunk);
  } catch (error) {
    reader.abort(error);
    throw error;
  }
  return reader.close();
}

/**
 * Stores the files of a compressed layer, or the one file of a layer compressed as a whole, as
 * blobs of their own: one pass over the stored layer, each file pushed under the digest the
 * streaming pass found (and verified again as it is written). Files of an uncompressed tar, served
 * in place, are left alone.
 */
export async function storeEntries(
  store: Store,
  layer: PlannedLayer,
  files: ModelFileInfo[],
  limits: ArchiveLimits,
  emit: (event: PullEvent) => void,
): Promise<void> {
  if (!layer.compression) return;
  const what = describe(layer);
  const stored = await store.fetch(layer.descriptor);
  const push = async (file: ModelFileInfo, body: ReadableStream<Uint8Array>) => {
    const blob = fileBlob(file);
    await store.push(blob, body);
    emit({ type: "extract", path: file.path, digest: blob.digest, size: file.size });
  };
  if (!layer.archive) {
    await push(files[0] as ModelFileInfo, inflate(stored, layer.compression, what, limits.maxTotalBytes));
    return;
  }
  let i = 0;
  await walkTar(stored, {
    what,
    compression: layer.compression,
    ...limits,
    onFile: (_, body) => push(files[i++] as ModelFileInfo, body),
  });
}
