import type { Entry, Writer } from "@zip.js/zip.js/index-native.js";
import { OciError } from "../errors.js";
import { invalidCheckpoint } from "./invalid.js";

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
  /**
   * The entry's bytes `[start, end)` (default: all of them), decompressed no further than `end`
   * and never past the declared size. A deflated entry read whole is checked against its declared
   * size and CRC; a stored one is read straight from the archive, whose bytes the store verified
   * against its digest (a CRC would add nothing a forger could not match).
   */
  read(start?: number, end?: number): Promise<Uint8Array>;
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
  const { Reader, Writer, ZipReader } = await import("@zip.js/zip.js/index-native.js");
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

  /**
   * Keeps bytes `[start, end)` of an entry of `declared` bytes as it inflates, in one buffer of that
   * size, and stops the inflation once it has them. zip.js itself refuses an entry that inflates past
   * its declared size before the excess reaches a writer (a lying or bombing entry).
   */
  class WindowWriter extends Writer<Uint8Array> {
    readonly out: Uint8Array;
    #at = 0;
    /** Set when this writer stopped the inflation because it had all it wanted. */
    stopped = false;
    constructor(
      readonly start: number,
      readonly end: number,
      readonly declared: number,
    ) {
      super();
      this.out = new Uint8Array(end - start);
    }
    override async writeUint8Array(chunk: Uint8Array): Promise<void> {
      const from = this.#at;
      this.#at += chunk.byteLength;
      const lo = Math.max(from, this.start);
      const hi = Math.min(this.#at, this.end);
      // Before the window (hi < lo) the slice is empty and lands at `out`'s start: no bytes copied.
      this.out.set(chunk.subarray(lo - from, hi - from), lo - this.start);
      // A read of the whole entry runs to the end, so that zip.js checks its size and CRC. Otherwise
      // the throw stops zip.js, and read() returns `out` (the error itself is never seen).
      if (this.#at >= this.end && this.end < this.declared) {
        this.stopped = true;
        throw new Error();
      }
    }
    override async getData(): Promise<Uint8Array> {
      return this.out;
    }
  }
  return { ZipReader, RangeReader, WindowWriter };
}

/** What a local file header says, to hold against the central directory. */
interface LocalHeader {
  method: number;
  /** Compressed, then uncompressed; none where a data descriptor after the data holds them (flag 3). */
  sizes: [number, number] | undefined;
  name: Uint8Array;
  dataOffset: number;
}

/**
 * Reads an entry's local header (one ranged read, a second only for a long extra field); undefined
 * when there is none where the central directory points.
 */
async function readLocalHeader(
  read: RangeRead,
  archiveSize: number,
  offset: number,
  nameLength: number,
): Promise<LocalHeader | undefined> {
  // Every read stays inside the archive; a store's read error is not a bad header, and comes through.
  if (offset + 30 > archiveSize) return undefined;
  // Room for the name and a usual extra field (zip64 sizes, PyTorch's alignment padding).
  const head = await read(offset, Math.min(archiveSize - offset, 30 + nameLength + 256));
  if (head.byteLength < 30) return undefined; // a store that returned less than asked
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0, true) !== 0x04034b50) return undefined;
  const n = view.getUint16(26, true);
  const x = view.getUint16(28, true);
  if (offset + 30 + n + x > archiveSize) return undefined;
  let sizes: [number, number] | undefined;
  if ((view.getUint16(6, true) & 8) === 0) {
    sizes = [view.getUint32(18, true), view.getUint32(22, true)];
    if (sizes[0] === 0xffffffff || sizes[1] === 0xffffffff) {
      // zip64: a local header's extra record holds both sizes, uncompressed first.
      const extra =
        30 + n + x <= head.byteLength ? head.subarray(30 + n, 30 + n + x) : await read(offset + 30 + n, x);
      const ev = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
      // A record that starts too late to hold both sizes cannot be the one.
      for (let at = 0; at + 20 <= extra.byteLength; at += 4 + ev.getUint16(at + 2, true)) {
        if (ev.getUint16(at, true) === 1) {
          sizes = [Number(ev.getBigUint64(at + 12, true)), Number(ev.getBigUint64(at + 4, true))];
          break;
        }
      }
    }
  }
  return {
    method: view.getUint16(8, true),
    sizes,
    name: head.subarray(30, Math.min(30 + n, head.byteLength)),
    dataOffset: offset + 30 + n + x,
  };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);

/**
 * Lists a zip archive's entries by random access (the central directory, then each local header),
 * never holding the archive. Refuses what two zip readers could read differently: a local header
 * that disagrees with the central directory, a stored entry whose sizes differ, a name given
 * twice, entries that overlap each other or the central directory; and entries whose declared
 * sizes look like a zip bomb.
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
  const { ZipReader, RangeReader, WindowWriter } = await zipJs;
  // Entries inherit these options: inflate on this thread, and check each whole entry's CRC.
  const reader = new ZipReader(new RangeReader(read, size), { useWebWorkers: false, checkSignature: true });
  let entries: Entry[];
  try {
    entries = await reader.getEntries();
  } catch (cause) {
    throw new OciError("INVALID_CHECKPOINT", `Cannot read ${what}: it is not a readable zip archive`, {
      cause,
    });
  }
  // zip.js keeps where the central directory starts; entries must end before it.
  const directory = (reader as unknown as { directoryOffset?: number }).directoryOffset;
  const end = Math.min(directory ?? size, size);
  const out: ZipEntryInfo[] = [];
  // Stryker disable next-line ArrayDeclaration: a stray first element sorts first (its start is NaN to the comparator) and is never checked as `next`
  const spans: { name: string; start: number; end: number }[] = [];
  const names = new Set<string>();
  for (const entry of entries) {
    if (entry.directory) continue;
    const name = entry.filename;
    if (names.has(name)) throw invalidCheckpoint(what, `it holds ${name} twice`);
    names.add(name);
    if (entry.encrypted) throw invalidCheckpoint(what, `entry ${name} is encrypted`);
    const local = await readLocalHeader(read, size, entry.offset, entry.rawFilename.byteLength);
    if (!local)
      throw invalidCheckpoint(what, `entry ${name} points outside the archive or at no local header`);
    const sizesAgree =
      local.sizes === undefined ||
      (local.sizes[0] === entry.compressedSize && local.sizes[1] === entry.uncompressedSize);
    if (local.method !== entry.compressionMethod || !sameBytes(local.name, entry.rawFilename) || !sizesAgree)
      throw invalidCheckpoint(what, `entry ${name}'s local header disagrees with the central directory`);
    if (entry.compressionMethod === 0 && entry.compressedSize !== entry.uncompressedSize) {
      throw invalidCheckpoint(
        what,
        `entry ${name} is stored (not compressed) but declares ${entry.uncompressedSize} bytes for ${entry.compressedSize} stored`,
      );
    }
    const { dataOffset } = local;
    if (dataOffset + entry.compressedSize > end)
      throw invalidCheckpoint(
        what,
        `entry ${name} runs past its data into the central directory or the end of the archive`,
      );
    if (entry.uncompressedSize > maxEntry)
      throw invalidCheckpoint(what, `entry ${name} declares ${entry.uncompressedSize} bytes, over the limit`);
    if (
      entry.uncompressedSize > 16 * 1024 * 1024 &&
      entry.uncompressedSize > entry.compressedSize * maxRatio
    ) {
      throw invalidCheckpoint(
        what,
        `entry ${name} would inflate ${Math.round(entry.uncompressedSize / Math.max(1, entry.compressedSize))}× (a zip bomb?)`,
      );
    }
    spans.push({ name, start: entry.offset, end: dataOffset + entry.compressedSize });
    const declared = entry.uncompressedSize;
    out.push({
      name,
      method: entry.compressionMethod,
      compressedSize: entry.compressedSize,
      size: declared,
      dataOffset,
      read: async (from = 0, to = declared) => {
        if (
          !(
            Number.isSafeInteger(from) &&
            Number.isSafeInteger(to) &&
            0 <= from &&
            from <= to &&
            to <= declared
          )
        )
          throw invalidCheckpoint(
            `${what} entry ${name}`,
            `bytes [${from}, ${to}) are outside its ${declared}`,
          );
        if (entry.compressionMethod === 0) return read(dataOffset + from, to - from);
        const getData = (
          entry as unknown as { getData(w: Writer<Uint8Array>, o?: object): Promise<Uint8Array> }
        ).getData;
        const writer = new WindowWriter(from, to, declared);
        try {
          return await getData.call(entry, writer);
        } catch (cause) {
          if (writer.stopped) return writer.out;
          if (cause instanceof OciError) throw cause;
          throw new OciError(
            "INVALID_CHECKPOINT",
            `Cannot read ${what} entry ${name}: it does not decompress cleanly`,
            { cause },
          );
        }
      },
    });
  }
  // Each entry's local header and data, in archive order, must end before the next one starts.
  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    const previous = spans[i - 1] as (typeof spans)[number];
    const next = spans[i] as (typeof spans)[number];
    if (next.start < previous.end)
      throw invalidCheckpoint(what, `entries ${previous.name} and ${next.name} overlap`);
  }
  return out;
}
