import { createTarDecoder, type ParsedTarEntry } from "modern-tar";
import { OciError } from "../errors.js";
import { decompressZstd } from "./zstd.js";

export type Compression = "gzip" | "zstd";

export interface ArchiveLimits {
  /** Most entries an archive may hold. Default 10 000. */
  maxEntries?: number;
  /** Most bytes its files may add up to. Default 1 GiB. */
  maxTotalBytes?: number;
}

/** A regular file of an archive, with its normalised path. */
export interface ArchiveFile {
  path: string;
  size: number;
}

export interface WalkTarOptions extends ArchiveLimits {
  compression?: Compression | undefined;
  /** What the archive is, for messages ("layer sha256:…"). */
  what: string;
  /** Receives each regular file; it must read or cancel `body` before the walk goes on. */
  onFile?: (file: ArchiveFile, body: ReadableStream<Uint8Array>) => Promise<void>;
}

export const DEFAULT_MAX_ENTRIES = 10_000;
export const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;

export function unsafe(what: string, reason: string, cause?: unknown): OciError {
  return new OciError(
    "UNSAFE_ARCHIVE",
    `Cannot extract ${what}: ${reason}; nothing of it was kept`,
    cause ? { cause } : {},
  );
}

/**
 * The path an entry may be written to, or undefined for the archive root. Refuses absolute paths,
 * `..` segments, NUL, backslashes and drive letters.
 */
export function safeEntryPath(name: string, what: string): string | undefined {
  if (name.includes("\0")) throw unsafe(what, `entry name contains NUL`);
  if (name.includes("\\")) throw unsafe(what, `entry "${name}" contains a backslash`);
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name))
    throw unsafe(what, `entry "${name}" has an absolute path`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw unsafe(what, `entry "${name}" climbs out with ".."`);
  return parts.length ? parts.join("/") : undefined;
}

/**
 * Decompresses: gzip with the runtime's `DecompressionStream`, zstd with the runtime's where it has
 * one and with fzstd elsewhere, its frames checked first (`src/archive/zstd.ts`: a window over
 * 128 MiB, a malformed or truncated frame are `UNSAFE_ARCHIVE`).
 */
export function decompress(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
  what: string,
): ReadableStream<Uint8Array> {
  if (compression === "zstd") return decompressZstd(stream, (reason) => unsafe(what, reason));
  let decoder: DecompressionStream;
  try {
    decoder = new DecompressionStream(compression as CompressionFormat);
  } catch (cause) {
    throw new OciError(
      "UNSUPPORTED_ARTIFACT",
      `Cannot extract ${what}: this runtime cannot decompress ${compression}`,
      { cause },
    );
  }
  return stream.pipeThrough(decoder as unknown as TransformStream<Uint8Array, Uint8Array>);
}

/**
 * Most bytes a tar adds to its files' own: a header, a PAX or GNU long-name header and the padding of
 * each entry (16 KiB allows a PAX record of a 12 KiB path), and 1 MiB for the end of the archive and
 * its blocking.
 */
const ENTRY_OVERHEAD = 16 * 1024;
const END_OVERHEAD = 1024 * 1024;

/**
 * Passes a decompressed stream on while it stays within `limit` bytes: a decompression bomb hidden
 * where no entry's size counts it (past the end of the archive, in an entry whose body is skipped)
 * is stopped all the same.
 */
function bounded(limit: number, what: string): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) throw unsafe(what, `it decompresses to more than ${limit} bytes`);
      controller.enqueue(chunk);
    },
  });
}

/** `UNSAFE_ARCHIVE` for a stream that failed while read, unless it failed with an `OciError` already. */
export function corrupt(what: string, cause: unknown): OciError {
  if (cause instanceof OciError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return unsafe(what, `it is truncated or corrupt (${reason})`, cause);
}

/**
 * Decompresses a stream that may hold at most `limit` bytes decompressed (default 1 GiB): more is
 * refused with `UNSAFE_ARCHIVE`, a decompression bomb stopped at the limit; so is a truncated or
 * corrupt stream, whatever error the runtime's decoder raised.
 */
export function inflate(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
  what: string,
  limit = DEFAULT_MAX_BYTES,
): ReadableStream<Uint8Array> {
  const reader = decompress(stream, compression, what).pipeThrough(bounded(limit, what)).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await reader.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (cause) {
        throw corrupt(what, cause);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/**
 * Walks a tar stream safely, in-stream: every entry is checked before its body is touched. Only
 * regular files and directories pass; symlinks, hardlinks, devices and fifos, unsafe paths,
 * duplicate names, too many entries or bytes, and truncated or corrupt archives are refused with
 * `UNSAFE_ARCHIVE`; so is a compressed archive that decompresses to more than its entries and bytes
 * can need.
 */
export async function walkTar(
  stream: ReadableStream<Uint8Array>,
  options: WalkTarOptions,
): Promise<ArchiveFile[]> {
  const { what } = options;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxBytes = options.maxTotalBytes ?? DEFAULT_MAX_BYTES;
  const source = options.compression
    ? inflate(stream, options.compression, what, maxBytes + maxEntries * ENTRY_OVERHEAD + END_OVERHEAD)
    : stream;
  const entries = source.pipeThrough(createTarDecoder({ strict: true }));
  const reader = entries.getReader();
  const files: ArchiveFile[] = [];
  const seen = new Set<string>();
  let count = 0;
  let total = 0;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<ParsedTarEntry>;
      try {
        next = await reader.read();
      } catch (cause) {
        throw corrupt(what, cause);
      }
      if (next.done) break;
      const { header, body } = next.value;
      if (++count > maxEntries) throw unsafe(what, `it has more than ${maxEntries} entries`);
      // modern-tar types every entry (typeflag "0", "\0" and unknown ones are "file").
      const { type } = header;
      const path = safeEntryPath(header.name, what);
      if (type === "directory" || path === undefined) {
        await body.cancel();
        continue;
      }
      if (type !== "file")
        throw unsafe(what, `entry "${header.name}" is a ${type}; only files and directories are allowed`);
      if (seen.has(path)) throw unsafe(what, `entry "${path}" appears twice`);
      seen.add(path);
      total += header.size;
      if (total > maxBytes) throw unsafe(what, `its files add up to more than ${maxBytes} bytes`);
      const file = { path, size: header.size };
      if (!options.onFile) await body.cancel();
      else {
        try {
          await options.onFile(file, body);
        } catch (cause) {
          if (cause instanceof OciError) throw cause;
          throw unsafe(what, `entry "${path}" is truncated or unreadable`, cause);
        }
      }
      files.push(file);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  return files;
}
