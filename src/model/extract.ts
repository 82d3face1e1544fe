/**
 * The files of archive layers and of files compressed as a whole, found while the layer's bytes pass
 * into the store (`PushOptions.tap`), checked and hashed in the same pass:
 *
 * - an uncompressed tar's files stay where they are: each is a byte range of the stored layer
 *   (`ModelFileInfo.layer`), located by `TarLocator`, so nothing is copied or read back;
 * - a compressed tar's files, and a file compressed as a whole, are hashed while the layer streams,
 *   then stored as blobs of their own in one more pass over the stored layer (`storeEntries`).
 *
 * Nothing of a layer is recorded before its digest matched: the pull writes the record last.
 */

import { type ArchiveLimits, type Compression, inflate, safeEntryPath, walkTar } from "../archive/tar.js";
import { TarLocator } from "../archive/tar-locate.js";
import { type CreateHasher, digestStream, parseDigest } from "../digest/hasher.js";
import { OciError } from "../errors.js";
import type { Store } from "../store/types.js";
import { isWeightPath } from "../tensors/files.js";
import type { PullEvent } from "./events.js";
import type { PlannedLayer } from "./layers.js";
import type { ModelFileInfo } from "./record.js";

/** Reads one layer's bytes as they are written, in order from the first. */
export interface LayerReader {
  write(bytes: Uint8Array): Promise<void>;
  /** Every byte was written: the layer's files, once all of them checked out. */
  close(): Promise<ModelFileInfo[]>;
  /** The layer will not be read to its end (the push failed or was stopped): later writes are let through. */
  abort(reason?: unknown): void;
}

const describe = (layer: PlannedLayer) => `layer ${layer.descriptor.digest} (${layer.descriptor.mediaType})`;

function headersDisagree(layer: PlannedLayer, detail: string): OciError {
  return new OciError(
    "UNSAFE_ARCHIVE",
    `Cannot extract ${describe(layer)}: its headers read two ways (${detail}); nothing of it was kept`,
  );
}

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
  const what = describe(layer);
  const algorithm = parseDigest(layer.descriptor.digest).algorithm;
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const writer = pipe.writable.getWriter();
  const locator = layer.archive && !layer.compression ? new TarLocator(createHasher, algorithm) : undefined;
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
      // An uncompressed tar's files are hashed where they lie, by the locator.
      ...(locator
        ? {}
        : {
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
          }),
    });
  }
  read.catch(() => {});

  /** The locator's files, matched one to one with those `walkTar` checked. */
  const located = (checked: { path: string; size: number }[]): ModelFileInfo[] => {
    let found: ReturnType<TarLocator["end"]>;
    try {
      found = (locator as TarLocator).end().filter((f) => safeEntryPath(f.name, what) !== undefined);
    } catch (cause) {
      throw headersDisagree(layer, cause instanceof Error ? cause.message : String(cause));
    }
    if (found.length !== checked.length)
      throw headersDisagree(layer, `${checked.length} files, or ${found.length}`);
    return checked.map((entry, i) => {
      const at = found[i] as (typeof found)[number];
      if (safeEntryPath(at.name, what) !== entry.path || at.size !== entry.size)
        throw headersDisagree(layer, `"${entry.path}" of ${entry.size} bytes, or "${at.name}" of ${at.size}`);
      const { digest, size } = layer.descriptor;
      return {
        path: entry.path,
        digest: at.digest,
        size: at.size,
        mediaType: "application/octet-stream",
        weight: isWeightPath(entry.path),
        layer: { digest, size, offset: at.offset },
      };
    });
  };

  // Once aborted, bytes still arriving are let through unread: the push they belong to goes on (or
  // stops) on its own, and keeps what arrived for a resume.
  let aborted = false;
  return {
    async write(bytes) {
      if (aborted) return;
      if (locator) {
        try {
          await locator.write(bytes);
        } catch (cause) {
          throw headersDisagree(layer, cause instanceof Error ? cause.message : String(cause));
        }
      }
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
      const checked = await read;
      return locator ? located(checked as { path: string; size: number }[]) : hashed;
    },
    abort(reason) {
      aborted = true;
      writer.abort(reason).catch(() => {});
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
    await store.push(file, body);
    emit({ type: "extract", path: file.path, digest: file.digest, size: file.size });
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
