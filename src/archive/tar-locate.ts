/**
 * Reads an uncompressed tar's headers as its bytes stream past, checks every entry, and says where
 * each regular file's bytes lie: what lets a stored tar layer serve its files in place (a file is a
 * byte range of the layer, verified by the layer's digest). Bodies are skipped, not read: a tar
 * layer costs its pull no more CPU than a raw one.
 *
 * The checks are `walkTar`'s (src/archive/tar.ts), which reads compressed tars with modern-tar:
 * paths (`safeEntryPath`), only files and directories, no duplicate names, at most `maxEntries`
 * entries and `maxTotalBytes` bytes of files, and a well-formed archive (header checksums, two zero
 * blocks at the end, nothing but zeros after them). Headers are read as modern-tar reads them, so
 * the same tar gives the same files either way (test/unit/tar-locate.test.ts holds both to it): a
 * ustar `prefix` only under the `ustar\0` magic, PAX `path` and `size` (per entry, and global), GNU
 * long names, octal or base-256 numbers, and any type flag that is not a link, device, fifo,
 * directory or metadata as a file.
 */
import { type ArchiveLimits, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, safeEntryPath, unsafe } from "./tar.js";

/** A regular file of a tar: its checked path, its length, and where its bytes start in the tar. */
export interface LocatedFile {
  path: string;
  size: number;
  offset: number;
}

const BLOCK = 512;
/** The largest PAX or GNU long-name record read; modern-tar refuses larger ones (8 MiB) too. */
const MAX_META = 8 * 1024 * 1024;
const PAX = 0x78; // x
const PAX_GLOBAL = 0x67; // g
const LONG_NAME = 0x4c; // L
const LONG_LINK = 0x4b; // K
const DIRECTORY = 0x35; // 5
/** Entries refused, by type flag: they have no body and are nothing a model folder holds. */
const REFUSED: Record<number, string> = {
  49: "link",
  50: "symlink",
  51: "character-device",
  52: "block-device",
  54: "fifo",
};

const decoder = new TextDecoder();

/** A NUL-terminated string field. */
function field(bytes: Uint8Array, at: number, size: number): string {
  const end = bytes.subarray(at, at + size).indexOf(0);
  return decoder.decode(bytes.subarray(at, end === -1 ? at + size : at + end));
}

/** A numeric field: base-256 when its first bit is set, else octal (spaces skipped, NUL ends it). */
function numeric(bytes: Uint8Array, at: number, size: number): number {
  let value = 0;
  if ((bytes[at] as number) & 0x80) {
    value = (bytes[at] as number) & 0x7f;
    for (let i = at + 1; i < at + size; i++) value = value * 256 + (bytes[i] as number);
    if (!Number.isSafeInteger(value)) throw new Error("a size field is too large");
    return value;
  }
  for (let i = at; i < at + size; i++) {
    const c = bytes[i] as number;
    if (c === 0) break;
    if (c === 0x20) continue;
    if (c < 0x30 || c > 0x37) throw new Error("a numeric field is not a number");
    value = value * 8 + (c - 0x30);
  }
  return value;
}

/** The sum of a header's bytes, its checksum field counted as spaces: what that field must hold. */
function checksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return sum;
}

/** `path` and `size` of PAX records (`<length> <key>=<value>\n`…). */
function paxRecords(bytes: Uint8Array): { name?: string; size?: number } {
  const out: { name?: string; size?: number } = {};
  let at = 0;
  while (at < bytes.length) {
    const space = bytes.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number.parseInt(decoder.decode(bytes.subarray(at, space)), 10);
    if (!(length > 0)) break;
    const record = decoder.decode(bytes.subarray(space + 1, at + length - 1));
    const equals = record.indexOf("=");
    if (equals > 0) {
      const key = record.slice(0, equals);
      const value = record.slice(equals + 1);
      if (key === "path") out.name = value;
      if (key === "size" && /^\d+$/.test(value) && Number.isSafeInteger(+value)) out.size = +value;
    }
    at += length;
  }
  return out;
}

const isZero = (bytes: Uint8Array) => bytes.every((b) => b === 0);

/**
 * Locates and checks the regular files of an uncompressed tar fed in order with `write`; `end`
 * returns them. Both throw `UNSAFE_ARCHIVE` for an archive `walkTar` would refuse.
 */
export class TarLocator {
  private readonly files: LocatedFile[] = [];
  private readonly seen = new Set<string>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private entries = 0;
  private total = 0;
  /** Bytes fed so far. */
  private pos = 0;
  /** Bytes up to here are skipped: a body, padding. */
  private skipTo = 0;
  private readonly header = new Uint8Array(BLOCK);
  private filled = 0;
  private meta: { type: number; bytes: Uint8Array; filled: number } | undefined;
  /** Overrides from PAX or GNU records for the next entry, and whether a PAX record set them. */
  private next: { name?: string; size?: number } = {};
  private nextFromPax = false;
  private global: { name?: string; size?: number } = {};
  /** Zero blocks read in a row at the end: two end the archive, after which only zeros may follow. */
  private zeros = 0;

  constructor(
    private readonly what: string,
    limits: ArchiveLimits = {},
  ) {
    this.maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.maxBytes = limits.maxTotalBytes ?? DEFAULT_MAX_BYTES;
  }

  write(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      const left = chunk.length - i;
      if (this.zeros === 2) {
        if (!isZero(chunk.subarray(i))) this.corrupt("bytes other than zeros follow its end");
        return;
      }
      if (this.pos < this.skipTo) {
        const n = Math.min(this.skipTo - this.pos, left);
        this.pos += n;
        i += n;
      } else if (this.meta) {
        const meta = this.meta;
        const n = Math.min(meta.bytes.length - meta.filled, left);
        meta.bytes.set(chunk.subarray(i, i + n), meta.filled);
        meta.filled += n;
        this.pos += n;
        i += n;
        if (meta.filled === meta.bytes.length) this.closeMeta(meta);
      } else {
        const n = Math.min(BLOCK - this.filled, left);
        this.header.set(chunk.subarray(i, i + n), this.filled);
        this.filled += n;
        this.pos += n;
        i += n;
        if (this.filled === BLOCK) {
          this.filled = 0;
          this.readHeader();
        }
      }
    }
  }

  /** The files located, in archive order; throws when the tar ended before its end-of-archive blocks. */
  end(): LocatedFile[] {
    if (this.zeros < 2) this.corrupt("it ends before its end-of-archive blocks");
    return this.files;
  }

  /** A numeric field of the header just read. */
  private number(at: number, size: number): number {
    try {
      return numeric(this.header, at, size);
    } catch (cause) {
      return this.corrupt((cause as Error).message);
    }
  }

  private corrupt(reason: string): never {
    throw unsafe(this.what, `it is truncated or corrupt (${reason})`);
  }

  private readHeader(): void {
    const block = this.header;
    if (isZero(block)) {
      this.zeros++;
      return;
    }
    if (this.zeros) this.corrupt(`a header follows a zero block at byte ${this.pos - 2 * BLOCK}`);
    if (this.number(148, 8) !== checksum(block))
      this.corrupt(`the header at byte ${this.pos - BLOCK} fails its checksum`);
    const size = this.number(124, 12);
    const type = block[156] as number;
    if (type === PAX || type === PAX_GLOBAL || type === LONG_NAME || type === LONG_LINK) {
      if (size > MAX_META) this.corrupt("a metadata record is over 8 MiB");
      this.meta = { type, bytes: new Uint8Array(size), filled: 0 };
      if (size === 0) this.closeMeta(this.meta);
      return;
    }
    const prefix = field(block, 257, 6) === "ustar" ? field(block, 345, 155) : "";
    const own = field(block, 0, 100);
    const name = this.next.name ?? this.global.name ?? (prefix ? `${prefix}/${own}` : own);
    const length = this.next.size ?? this.global.size ?? size;
    this.next = {};
    this.nextFromPax = false;
    if (++this.entries > this.maxEntries)
      throw unsafe(this.what, `it has more than ${this.maxEntries} entries`);
    const path = safeEntryPath(name, this.what);
    const refused = REFUSED[type];
    // Directories and refused types have no body (modern-tar ignores their size); a file named like
    // a directory has one, skipped.
    if (type === DIRECTORY || (refused && path === undefined)) return;
    this.skipTo = this.pos + length + (-length & (BLOCK - 1));
    if (path === undefined || (!refused && name.endsWith("/"))) return;
    if (refused)
      throw unsafe(this.what, `entry "${name}" is a ${refused}; only files and directories are allowed`);
    if (this.seen.has(path)) throw unsafe(this.what, `entry "${path}" appears twice`);
    this.seen.add(path);
    this.total += length;
    if (this.total > this.maxBytes)
      throw unsafe(this.what, `its files add up to more than ${this.maxBytes} bytes`);
    this.files.push({ path, size: length, offset: this.pos });
  }

  private closeMeta(meta: { type: number; bytes: Uint8Array }): void {
    this.meta = undefined;
    this.skipTo = this.pos + (-meta.bytes.length & (BLOCK - 1));
    // A record after a PAX one starts the overrides afresh, as modern-tar does.
    if (this.nextFromPax) {
      this.next = {};
      this.nextFromPax = false;
    }
    if (meta.type === PAX_GLOBAL) Object.assign(this.global, paxRecords(meta.bytes));
    else if (meta.type === PAX) {
      Object.assign(this.next, paxRecords(meta.bytes));
      this.nextFromPax = true;
    } else if (meta.type === LONG_NAME) this.next.name = field(meta.bytes, 0, meta.bytes.length);
  }
}
