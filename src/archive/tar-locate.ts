/**
 * Where each regular file of an uncompressed tar lies, read from its headers as the bytes stream
 * past, and what the file's bytes hash to: what lets a stored tar layer serve its files in place
 * (a file is a byte range of the layer). It only locates; `walkTar` decides what is safe, and the
 * caller checks that both read the same files (`sameFiles`).
 *
 * Headers are read as modern-tar (which `walkTar` uses) reads them: a ustar `prefix` only under the
 * `ustar\0` magic, PAX `path` and `size` (per entry, and global), GNU long names, octal or base-256
 * numbers, and any type flag that is not a link, device, fifo, directory or metadata as a file.
 */
import type { CreateHasher, DigestAlgorithm, Hasher } from "../digest/hasher.js";

/** A regular file of a tar: its name as the headers give it, its bytes' place and digest. */
export interface LocatedFile {
  name: string;
  size: number;
  /** Where its bytes start in the tar. */
  offset: number;
  digest: string;
}

const BLOCK = 512;
/** The largest PAX or GNU long-name record read; modern-tar refuses larger ones (8 MiB) too. */
const MAX_META = 8 * 1024 * 1024;
const PAX = 0x78; // x
const PAX_GLOBAL = 0x67; // g
const LONG_NAME = 0x4c; // L
const LONG_LINK = 0x4b; // K
/** Links, devices, directories and fifos: no body. */
const BODYLESS = new Set([0x31, 0x32, 0x33, 0x34, 0x35, 0x36]);

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
    if (c < 0x30 || c > 0x37) throw new Error("a size field is not a number");
    value = value * 8 + (c - 0x30);
  }
  return value;
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

const isZero = (block: Uint8Array) => block.every((b) => b === 0);

/**
 * Locates the regular files of an uncompressed tar fed in order with `write`; `end` returns them.
 * Throws on a header it cannot read (the caller refuses the archive).
 */
export class TarLocator {
  readonly files: LocatedFile[] = [];
  /** Bytes fed so far. */
  private pos = 0;
  /** Bytes up to here are skipped (a body not hashed, padding). */
  private skipTo = 0;
  private readonly header = new Uint8Array(BLOCK);
  private filled = 0;
  private meta: { type: number; bytes: Uint8Array; filled: number } | undefined;
  /** Overrides from PAX or GNU records for the next entry, and whether a PAX record set them. */
  private next: { name?: string; size?: number } = {};
  private nextFromPax = false;
  private global: { name?: string; size?: number } = {};
  private body: { file: Omit<LocatedFile, "digest">; remaining: number; hasher: Hasher } | undefined;
  private ended = false;

  constructor(
    private readonly createHasher: CreateHasher,
    private readonly algorithm: DigestAlgorithm,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    let i = 0;
    while (i < chunk.length && !this.ended) {
      const left = chunk.length - i;
      if (this.body) {
        const n = Math.min(this.body.remaining, left);
        await this.body.hasher.update(chunk.subarray(i, i + n));
        this.pos += n;
        i += n;
        this.body.remaining -= n;
        if (this.body.remaining === 0) await this.closeBody();
      } else if (this.pos < this.skipTo) {
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
          await this.readHeader();
        }
      }
    }
  }

  /** The files located; throws when the tar ended inside an entry or before its end blocks. */
  end(): LocatedFile[] {
    if (!this.ended) throw new Error("the archive ends before its end-of-archive blocks");
    return this.files;
  }

  private async readHeader(): Promise<void> {
    const block = this.header;
    if (isZero(block)) {
      this.ended = true;
      return;
    }
    const type = block[156] as number;
    const size = numeric(block, 124, 12);
    if (type === PAX || type === PAX_GLOBAL || type === LONG_NAME || type === LONG_LINK) {
      if (size > MAX_META) throw new Error("a metadata record is over 8 MiB");
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
    if (BODYLESS.has(type)) return;
    if (name.endsWith("/")) {
      // modern-tar reads it as a directory and skips its body.
      this.skipTo = this.pos + length + (-length & (BLOCK - 1));
      return;
    }
    this.body = {
      file: { name, size: length, offset: this.pos },
      remaining: length,
      hasher: await this.createHasher(this.algorithm),
    };
    if (length === 0) await this.closeBody();
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

  private async closeBody(): Promise<void> {
    const body = this.body as NonNullable<TarLocator["body"]>;
    this.body = undefined;
    const size = body.file.size;
    this.skipTo = this.pos + (-size & (BLOCK - 1));
    this.files.push({ ...body.file, digest: `${this.algorithm}:${await body.hasher.digest()}` });
  }
}
