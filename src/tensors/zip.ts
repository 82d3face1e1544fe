import type { Entry, Writer } from "@zip.js/zip.js/index-native.js";
import { OciError } from "../errors.js";

/** Reads bytes `[offset, offset + length)` of the archive (a store's ranged fetch, or HTTP Range). */
export type RangeRead = (offset: number, length: number) => Promise<Uint8Array>;

export interface ZipEntryInfo {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Where the entry's (compressed) bytes start in the archive. */
  dataOffset: number;
  /** The entry's bytes, decompressed and checked against its declared size. */
  read(): Promise<Uint8Array>;
}

export interface ZipLimits {
  /** Largest entry, uncompressed. Default 4 GiB. */
  maxEntryBytes?: number;
  /** Largest ratio of uncompressed to compressed size for entries over 16 MiB. Default 1000. */
  maxRatio?: number;
}

/**
 * zip.js, loaded on the first archive read (a pull that never reads a zip does not hold it), with
 * the reader and writer this file needs.
 */
let zipJs: ReturnType<typeof loadZipJs> | undefined;
async function loadZipJs() {
  const { configure, Reader, Writer, ZipReader } = await import("@zip.js/zip.js/index-native.js");
  configure({ useWebWorkers: false });
  class RangeReader extends Reader<RangeRead> {
    readonly #read: RangeRead;
    readonly #total: number;
    constructor(read: RangeRead, total: number) {
      super(read);
      this.#read = read;
      this.#total = total;
      this.size = total;
    }
    override async readUint8Array(index: number, length: number): Promise<Uint8Array> {
      const end = Math.min(this.#total, index + length);
      return end > index ? this.#read(index, end - index) : new Uint8Array(0);
    }
  }

  /** A writer that refuses to grow past the entry's declared size (a lying or bombing entry). */
  class CappedWriter extends Writer<Uint8Array> {
    readonly #parts: Uint8Array[] = [];
    #size = 0;
    constructor(
      readonly limit: number,
      readonly what: string,
    ) {
      super();
    }
    override async writeUint8Array(array: Uint8Array): Promise<void> {
      this.#size += array.byteLength;
      if (this.#size > this.limit) throw bad(this.what, `it inflates past its declared ${this.limit} bytes`);
      this.#parts.push(array.slice());
    }
    override async getData(): Promise<Uint8Array> {
      const out = new Uint8Array(this.#size);
      let at = 0;
      for (const p of this.#parts) {
        out.set(p, at);
        at += p.byteLength;
      }
      return out;
    }
  }
  return { ZipReader, RangeReader, CappedWriter };
}

function bad(what: string, reason: string): OciError {
  return new OciError("INVALID_CHECKPOINT", `Cannot read ${what}: ${reason}`);
}

/**
 * Lists a zip archive's entries by random access (the central directory, then each local header),
 * never holding the archive. Refuses entries outside the archive, overlapping entries, and entries
 * whose declared sizes look like a zip bomb.
 */
export async function readZip(
  read: RangeRead,
  size: number,
  what: string,
  limits: ZipLimits = {},
): Promise<ZipEntryInfo[]> {
  const maxEntry = limits.maxEntryBytes ?? 4 * 1024 ** 3;
  const maxRatio = limits.maxRatio ?? 1000;
  zipJs ??= loadZipJs().catch((error: unknown) => {
    zipJs = undefined; // try again next time
    throw error;
  });
  const { ZipReader, RangeReader, CappedWriter } = await zipJs;
  const reader = new ZipReader(new RangeReader(read, size), { useWebWorkers: false, checkSignature: true });
  let entries: Entry[];
  try {
    entries = await reader.getEntries();
  } catch (cause) {
    throw new OciError("INVALID_CHECKPOINT", `Cannot read ${what}: it is not a readable zip archive`, {
      cause,
    });
  }
  const out: ZipEntryInfo[] = [];
  for (const entry of entries) {
    if (entry.directory) continue;
    if (entry.encrypted) throw bad(what, `entry ${entry.filename} is encrypted`);
    const header = await read(entry.offset, 30).catch(() => new Uint8Array(0));
    if (
      header.byteLength < 30 ||
      new DataView(header.buffer, header.byteOffset).getUint32(0, true) !== 0x04034b50
    ) {
      throw bad(what, `entry ${entry.filename} points outside the archive or at no local header`);
    }
    const local = new DataView(header.buffer, header.byteOffset);
    const dataOffset = entry.offset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataOffset + entry.compressedSize > size)
      throw bad(what, `entry ${entry.filename} runs past the end of the archive`);
    if (entry.uncompressedSize > maxEntry)
      throw bad(what, `entry ${entry.filename} declares ${entry.uncompressedSize} bytes, over the limit`);
    if (
      entry.uncompressedSize > 16 * 1024 * 1024 &&
      entry.uncompressedSize > entry.compressedSize * maxRatio
    ) {
      throw bad(
        what,
        `entry ${entry.filename} would inflate ${Math.round(entry.uncompressedSize / Math.max(1, entry.compressedSize))}× (a zip bomb?)`,
      );
    }
    out.push({
      name: entry.filename,
      method: entry.compressionMethod,
      compressedSize: entry.compressedSize,
      size: entry.uncompressedSize,
      dataOffset,
      read: async () => {
        if (entry.compressionMethod === 0) return read(dataOffset, entry.compressedSize);
        const getData = (
          entry as unknown as { getData(w: Writer<Uint8Array>, o?: object): Promise<Uint8Array> }
        ).getData;
        try {
          return await getData.call(
            entry,
            new CappedWriter(entry.uncompressedSize, `${what} entry ${entry.filename}`),
            { useWebWorkers: false, checkSignature: true },
          );
        } catch (cause) {
          if (cause instanceof OciError) throw cause;
          throw new OciError(
            "INVALID_CHECKPOINT",
            `Cannot read ${what} entry ${entry.filename}: it does not decompress cleanly`,
            { cause },
          );
        }
      },
    });
  }
  const sorted = [...out].sort((a, b) => a.dataOffset - b.dataOffset);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1] as ZipEntryInfo;
    if ((sorted[i] as ZipEntryInfo).dataOffset < previous.dataOffset + previous.compressedSize) {
      throw bad(what, `entries ${previous.name} and ${(sorted[i] as ZipEntryInfo).name} overlap`);
    }
  }
  return out;
}
