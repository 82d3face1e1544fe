import type { Descriptor } from "../oci/manifest.js";
import type { IngestState, StoreBackend } from "./backend.js";
import { createStore } from "./engine.js";
import { type SyncFiles, syncFiles } from "./opfs-sync.js";
import { checkCovers, heldBytes, heldSpans, trustedState } from "./pieces.js";
import type { Span, Store, StoreOptions } from "./types.js";

const fileName = (digest: string) => digest.replace(":", "-");
const digestOf = (name: string) => name.replace("-", ":");

/** Bytes handed to the writer worker and not yet written, at most (the transferred buffers). */
const QUEUED_BYTES = 32 * 1024 * 1024;

/**
 * Piece files of one download open at once: one per range in flight (the registry client's default
 * is 4), the rest closed, the one written longest ago first.
 */
const OPEN_PIECES = 8;

/** Piece files opened for appending so far in this realm (each open gets its own worker key). */
let opened = 0;

/** A piece file (named by its start) of a download. */
interface Piece {
  name: string;
  start: number;
  end: number;
}

/** A piece open for appending through a sync access handle: `key` names it to the worker. */
interface OpenPiece extends Piece {
  key: string;
}

/**
 * A download written through sync access handles: the pieces open for appending (in order, one,
 * or side by side, one per range), and the writes queued to the worker for all of them.
 */
interface Writing {
  /** The checkpoint record's file. */
  state: FileSystemFileHandle;
  open: OpenPiece[];
  /** Every piece opened since the download started writing: a record waits for them all. */
  keys: Set<string>;
  queue: { write: Promise<void>; size: number }[];
  queued: number;
  /** The first write (or open, or close) that failed: every later write fails with it. */
  error?: { reason: unknown };
}

const span = (piece: { start: number; file: File }) => ({
  start: piece.start,
  end: piece.start + piece.file.size,
});

function isNotFound(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === "NotFoundError";
}

async function writeWhole(
  dir: FileSystemDirectoryHandle,
  name: string,
  data: Blob | Uint8Array | string,
): Promise<void> {
  const handle = await dir.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  try {
    await writable.write(data as FileSystemWriteChunkType);
    await writable.close(); // the new content becomes visible here, all at once
  } catch (error) {
    await writable.abort().catch(() => {});
    throw error;
  }
}

async function readText(dir: FileSystemDirectoryHandle, name: string): Promise<string | undefined> {
  try {
    return await (await (await dir.getFileHandle(name)).getFile()).text();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function isBusy(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name;
  return name === "NotReadableError" || name === "NoModificationAllowedError";
}

/** The offset a checkpoint record names; 0 for none, or one cut off while it was rewritten. */
function recordedOffset(text: string | undefined): number {
  try {
    return Number((JSON.parse(text ?? "") as { offset?: unknown } | null)?.offset) || 0;
  } catch {
    return 0;
  }
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function unbase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * The Origin Private File System. A download is a folder of piece files under `ingest/`: appended
 * through a sync access handle where one can be had (see opfs-sync.ts), else each chunk its own
 * piece written once with `createWritable` (so no write copies what is already there). Commit
 * writes a small record under `blobs/`, and the blob is read as a `Blob` over its pieces — no byte
 * is copied after it was verified.
 */
class OpfsBackend implements StoreBackend {
  readonly id: string;
  readonly #name: string;
  readonly #writing = new Map<string, Writing>();
  /** The `ingestWriteAt` call in progress: reads of the ingest wait for it (its files are held). */
  readonly #placing = new Map<string, Promise<unknown>>();
  /**
   * The pieces of a download `ingestWriteAt` writes, listed once per push: listing them (a `File`
   * each) before every write grew with the square of their number.
   */
  readonly #placed = new Map<string, Piece[]>();
  #dirs:
    | Promise<{
        root: FileSystemDirectoryHandle;
        blobs: FileSystemDirectoryHandle;
        ingest: FileSystemDirectoryHandle;
      }>
    | undefined;

  constructor(name: string) {
    this.#name = name;
    this.id = `opfs:${name}`;
  }

  #open() {
    this.#dirs ??= (async () => {
      const top = await (await navigator.storage.getDirectory()).getDirectoryHandle("oci-model-loader", {
        create: true,
      });
      const root = await top.getDirectoryHandle(this.#name, { create: true });
      return {
        root,
        blobs: await root.getDirectoryHandle("blobs", { create: true }),
        ingest: await root.getDirectoryHandle("ingest", { create: true }),
      };
    })();
    return this.#dirs;
  }

  /** The commit record of a blob: its size (the bytes stay in their piece files, never copied). */
  async #record(digest: string): Promise<{ size: number } | undefined> {
    const text = await readText((await this.#open()).blobs, fileName(digest));
    // A record appears whole when its writer closes; an empty or cut one is a commit that never
    // completed (the quota ran out as it was written, the tab closed): the blob is not there.
    try {
      const record = JSON.parse(text ?? "") as { size?: unknown };
      return Number.isSafeInteger(record.size) ? { size: record.size as number } : undefined;
    } catch {
      return undefined;
    }
  }

  async has(digest: string) {
    return (await this.#record(digest)) !== undefined;
  }

  async read(digest: string, offset: number, length: number) {
    return (await this.blob(digest, offset, length)).stream() as ReadableStream<Uint8Array>;
  }

  /** A `Blob` over the piece files themselves: the browser reads them from disk when asked. */
  async blob(digest: string, offset: number, length: number) {
    const { pieces } = await this.#pieces(digest);
    return new Blob(pieces.map((p) => p.file)).slice(offset, offset + length);
  }

  async remove(digest: string) {
    const { blobs, ingest } = await this.#open();
    for (const [dir, name] of [
      [blobs, fileName(digest)],
      [ingest, fileName(digest)],
    ] as const) {
      await dir.removeEntry(name, { recursive: true }).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
  }

  async blobs() {
    const out: { digest: string; size: number }[] = [];
    for await (const [name, handle] of (await this.#open()).blobs.entries()) {
      if (handle.kind !== "file") continue;
      const record = await this.#record(digestOf(name)).catch(() => undefined);
      if (record) out.push({ digest: digestOf(name), size: record.size });
    }
    return out;
  }

  async #pieceDir(digest: string, create: boolean): Promise<FileSystemDirectoryHandle | undefined> {
    try {
      return await (await this.#open()).ingest.getDirectoryHandle(fileName(digest), { create });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Piece files named by zero-padded start offset, with their sizes, in order. */
  async #pieces(digest: string) {
    const dir = await this.#pieceDir(digest, false);
    const pieces: { name: string; start: number; file: File }[] = [];
    if (!dir) return { dir, pieces };
    for await (const [name, handle] of dir.entries()) {
      if (handle.kind === "file" && /^\d+$/.test(name)) {
        pieces.push({ name, start: Number(name), file: await (handle as FileSystemFileHandle).getFile() });
      }
    }
    pieces.sort((a, b) => a.start - b.start);
    return { dir, pieces };
  }

  async ingestState(digest: string): Promise<IngestState | undefined> {
    const text = await readText((await this.#open()).ingest, `${fileName(digest)}.state`);
    const { pieces } = await this.#pieces(digest);
    const held = heldBytes(pieces.map(span));
    let raw: { offset: number; updatedAt: number; hasherState?: string; spans?: Span[] };
    try {
      raw = JSON.parse(text ?? "");
    } catch {
      // None, or cut off while it was rewritten: resume from what the pieces hold, re-hashing it.
      return held > 0 ? { offset: held, updatedAt: 0 } : undefined;
    }
    // The data is flushed before each record, but never resume past what is really there.
    const { hasherState, ...state } = raw;
    const trusted = trustedState(
      hasherState ? { ...state, hasherState: unbase64(hasherState) } : state,
      held,
    );
    return heldSpans(trusted, pieces.map(span));
  }

  async ingestWrite(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    this.#placed.delete(digest);
    const files = await syncFiles();
    if (!files) return this.#writePiece(digest, offset, bytes);
    let writing = this.#writing.get(digest);
    let piece = writing?.open.length === 1 && writing.open[0]?.end === offset ? writing.open[0] : undefined;
    if (!writing || !piece) {
      await this.#stopWriting(digest, true);
      writing = await this.#startWriting(digest);
      const { pieces } = await this.#pieces(digest);
      const dir = (await this.#pieceDir(digest, true)) as FileSystemDirectoryHandle;
      const into = pieces.find((p) => p.start < offset && offset <= p.start + p.file.size);
      for (const p of pieces) if (p.start >= offset) await dir.removeEntry(p.name);
      piece = await this.#openPiece(files, writing, digest, dir, into?.start ?? offset, offset);
    }
    await this.#append(files, writing, piece, offset, bytes, recycle);
  }

  /** Queues a write to the worker; waits only while more than `QUEUED_BYTES` are queued. */
  async #append(
    files: SyncFiles,
    writing: Writing,
    piece: OpenPiece,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    const size = bytes.byteLength; // before the bytes are transferred to the worker
    piece.end = offset + size;
    const write = files.write(piece.key, offset - piece.start, bytes).then((back) => recycle?.(back));
    await this.#enqueue(writing, write, size);
  }

  /**
   * Not awaited: the worker writes while the next chunks are fetched and hashed. A failed write
   * fails the next call that queues one once its answer came, or that waits for it (one past
   * QUEUED_BYTES, or the commit).
   */
  async #enqueue(writing: Writing, write: Promise<void>, size: number) {
    if (writing.error) throw writing.error.reason;
    write.catch((reason: unknown) => {
      writing.error ??= { reason };
    });
    writing.queue.push({ write, size });
    writing.queued += size;
    while (writing.queued > QUEUED_BYTES) {
      const oldest = writing.queue.shift() as { write: Promise<void>; size: number };
      writing.queued -= oldest.size;
      await oldest.write;
    }
  }

  async #startWriting(digest: string): Promise<Writing> {
    const state = await (await this.#open()).ingest.getFileHandle(`${fileName(digest)}.state`, {
      create: true,
    });
    const writing: Writing = { state, open: [], keys: new Set(), queue: [], queued: 0 };
    this.#writing.set(digest, writing);
    return writing;
  }

  /**
   * Opens piece `start` for appending at `offset` (what follows is cut off): queued, not awaited,
   * behind the writes before it. Past `OPEN_PIECES`, the one written longest ago is closed.
   */
  async #openPiece(
    files: SyncFiles,
    writing: Writing,
    digest: string,
    dir: FileSystemDirectoryHandle,
    start: number,
    offset: number,
  ): Promise<OpenPiece> {
    const name = String(start).padStart(16, "0");
    // A new key each time: a failure under an earlier one still refuses this download's records.
    const key = `${this.id}/${digest}@${start}#${++opened}`;
    const file = await dir.getFileHandle(name, { create: true });
    // Nothing more is opened once a write failed; what is opened is listed first, so that stopping
    // the download closes it even where its open fails with a write before it.
    if (writing.error) throw writing.error.reason;
    const piece: OpenPiece = { name, key, start, end: offset };
    writing.open.push(piece);
    writing.keys.add(key);
    await this.#enqueue(writing, files.open(key, file, offset - start), 0);
    const oldest = writing.open.length > OPEN_PIECES ? writing.open.shift() : undefined;
    if (oldest) await this.#enqueue(writing, files.close(oldest.key), 0);
    return piece;
  }

  /** Waits for the queued writes and closes the files; `strict` throws if one failed. */
  async #stopWriting(digest: string, strict: boolean) {
    const writing = this.#writing.get(digest);
    if (!writing) return;
    this.#writing.delete(digest);
    const files = await syncFiles();
    const done = await Promise.allSettled([
      ...writing.queue.map((q) => q.write),
      ...writing.open.map((p) => files?.close(p.key)),
    ]);
    const failed = done.find((w) => w.status === "rejected");
    if (strict && failed) throw failed.reason;
    if (strict && writing.error) throw writing.error.reason;
  }

  /** Waits for the download's queued writes (each gives its buffer back once written); pieces stay open. */
  async ingestWritten(digest: string) {
    await this.#placing.get(digest);
    const writing = this.#writing.get(digest);
    if (!writing) return;
    await Promise.all(writing.queue.map((q) => q.write));
    if (writing.error) throw writing.error.reason;
  }

  async ingestRelease(digest: string) {
    this.#placed.delete(digest);
    await this.#stopWriting(digest, false);
  }

  /** Without sync access handles: each write is a new piece file (what follows `offset` is dropped). */
  async #writePiece(digest: string, offset: number, bytes: Uint8Array) {
    const { pieces } = await this.#pieces(digest);
    const dir = (await this.#pieceDir(digest, true)) as FileSystemDirectoryHandle;
    for (const piece of pieces) {
      if (piece.start >= offset) await dir.removeEntry(piece.name);
      else if (piece.start + piece.file.size > offset)
        await writeWhole(dir, piece.name, piece.file.slice(0, offset - piece.start));
    }
    await writeWhole(dir, String(offset).padStart(16, "0"), bytes);
  }

  /**
   * Appended through a sync access handle to the piece that ends at `offset` (a range's piece grows
   * chunk by chunk), or to a new piece there; writes are queued as `ingestWrite`'s, and a record
   * waits for them. Without sync access handles each chunk is its own piece file, written whole.
   */
  async ingestWriteAt(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    const writing = this.#writeAt(digest, offset, bytes, recycle);
    this.#placing.set(
      digest,
      writing.catch(() => {}),
    );
    await writing;
  }

  async #writeAt(digest: string, offset: number, bytes: Uint8Array, recycle?: (bytes: Uint8Array) => void) {
    const end = offset + bytes.byteLength;
    let known = this.#placed.get(digest);
    if (!known) {
      // The first write of a push: no file of the download may be held while they are listed.
      await this.#stopWriting(digest, true);
      known = await this.#cutToRecord(digest);
      this.#placed.set(digest, known);
    }
    // The directory only where a file is opened, written or removed: a chunk appended to the piece
    // its range is writing asks the browser for nothing.
    let handle: FileSystemDirectoryHandle | undefined;
    const dir = async () => {
      handle ??= (await this.#pieceDir(digest, true)) as FileSystemDirectoryHandle;
      return handle;
    };
    const files = await syncFiles();
    let writing = this.#writing.get(digest);
    let piece: Piece | undefined = writing?.open.find((p) => p.end === offset);
    if (files && !piece) {
      writing ??= await this.#startWriting(digest);
      // A piece that holds `offset` (one a range of an earlier push left, counted up to here or
      // not) goes on from it; what it held past `offset` was never counted.
      const into = known.find((p) => p.start <= offset && offset <= p.end);
      const opened = await this.#openPiece(
        files,
        writing,
        digest,
        await dir(),
        into?.start ?? offset,
        offset,
      );
      if (into) known.splice(known.indexOf(into), 1);
      known.push(opened);
      piece = opened;
    }
    // A piece it overlaps was written by a push whose record never counted it: it goes whole.
    const name = String(offset).padStart(16, "0");
    for (const other of known.filter((p) => p !== piece && p.start < end && p.end > offset)) {
      known.splice(known.indexOf(other), 1);
      if (other.name !== name || piece) await (await dir()).removeEntry(other.name);
    }
    if (files && writing && piece)
      return this.#append(files, writing, piece as OpenPiece, offset, bytes, recycle);
    await writeWhole(await dir(), name, bytes);
    known.push({ name, start: offset, end });
  }

  /**
   * The pieces of a download cut to the bytes its record counts, before a push writes at offsets:
   * the push fetches every other byte again, and one of its ranges may reach bytes a piece holds
   * uncounted (written after the last record, or before a write that failed) while another range
   * goes on in that piece, open. Cut, every piece holds counted bytes only and grows at its end.
   */
  async #cutToRecord(digest: string): Promise<Piece[]> {
    const state = await this.ingestState(digest);
    const counted: Span[] = [[0, state?.offset ?? 0], ...(state?.spans ?? [])];
    const { dir, pieces } = await this.#pieces(digest);
    if (!dir) return [];
    const files = await syncFiles();
    const kept: Piece[] = [];
    for (const piece of pieces) {
      const { start, end } = span(piece);
      const upTo = counted.find(([from, to]) => from <= start && start < to)?.[1];
      if (upTo === undefined) await dir.removeEntry(piece.name);
      else if (upTo < end && files) {
        // Opened through the worker, it is cut to the size it is opened at.
        const key = `${this.id}/${digest}@${start}#${++opened}`;
        await files.open(key, await dir.getFileHandle(piece.name), upTo - start);
        await files.close(key);
      } else if (upTo < end) await writeWhole(dir, piece.name, piece.file.slice(0, upTo - start));
      if (upTo !== undefined) kept.push({ name: piece.name, start, end: Math.min(end, upTo) });
    }
    return kept;
  }

  async ingestCheckpoint(digest: string, state: IngestState) {
    const record = {
      offset: state.offset,
      updatedAt: state.updatedAt,
      ...(state.hasherState ? { hasherState: base64(state.hasherState) } : {}),
      ...(state.spans ? { spans: state.spans } : {}),
    };
    const text = JSON.stringify(record);
    const writing = this.#writing.get(digest);
    const files = writing && (await syncFiles());
    // Through the worker the record is queued behind the writes it describes, in every piece.
    if (writing && files) {
      const put = files.put([...writing.keys], writing.state, new TextEncoder().encode(text));
      await this.#enqueue(writing, put, 0);
    } else await writeWhole((await this.#open()).ingest, `${fileName(digest)}.state`, text);
  }

  async ingestRead(digest: string, offset: number, length: number) {
    await this.#placing.get(digest);
    await this.#stopWriting(digest, true);
    const { pieces } = await this.#pieces(digest);
    const parts = pieces.map((p) =>
      p.file.slice(Math.max(0, offset - p.start), Math.max(0, offset + length - p.start)),
    );
    return new Blob(parts).stream() as ReadableStream<Uint8Array>;
  }

  /** Commit writes a small record under the final name; the verified pieces become the blob as they are. */
  async ingestCommit(digest: string, size: number) {
    this.#placed.delete(digest);
    await this.#stopWriting(digest, true);
    checkCovers((await this.#pieces(digest)).pieces.map(span), size);
    const { blobs, ingest } = await this.#open();
    await writeWhole(blobs, fileName(digest), JSON.stringify({ size }));
    await ingest.removeEntry(`${fileName(digest)}.state`).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
  }

  async ingestDiscard(digest: string) {
    this.#placed.delete(digest);
    await this.#stopWriting(digest, false);
    const { ingest } = await this.#open();
    const names = (await this.has(digest))
      ? [`${fileName(digest)}.state`]
      : [fileName(digest), `${fileName(digest)}.state`];
    for (const name of names) {
      await ingest.removeEntry(name, { recursive: true }).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
  }

  async ingests() {
    const out: { digest: string; state: IngestState }[] = [];
    for await (const [name, handle] of (await this.#open()).ingest.entries()) {
      if (handle.kind !== "directory" || (await this.has(digestOf(name)))) continue;
      const digest = digestOf(name);
      out.push({ digest, state: (await this.#stateOrBusy(digest)) ?? { offset: 0, updatedAt: 0 } });
    }
    return out;
  }

  /**
   * A download another tab or worker is writing can be unreadable here: Chromium fails a read of its
   * record that the writer truncated and rewrote meanwhile (NotReadableError), Firefox refuses to
   * open a piece the writer holds (NoModificationAllowedError). It is being written now. It holds
   * what its pieces hold where they can be opened, else what its record said, if the record is
   * whole: the writer empties it for an instant at every rewrite.
   */
  async #stateOrBusy(digest: string): Promise<IngestState | undefined> {
    try {
      return await this.ingestState(digest);
    } catch (error) {
      if (!isBusy(error)) throw error;
      const pieces = await this.#pieces(digest).then(
        (found) => found.pieces,
        (again: unknown) => {
          if (!isBusy(again)) throw again;
        },
      );
      const offset = pieces
        ? heldBytes(pieces.map(span))
        : recordedOffset(
            await readText((await this.#open()).ingest, `${fileName(digest)}.state`).catch(() => ""),
          );
      return { offset, updatedAt: Date.now() };
    }
  }

  async readTags() {
    const text = await readText((await this.#open()).root, "tags.json");
    return new Map<string, Descriptor>(text ? JSON.parse(text) : []);
  }

  async writeTags(tags: Map<string, Descriptor>) {
    await writeWhole((await this.#open()).root, "tags.json", JSON.stringify([...tags]));
  }
}

/**
 * A store in the Origin Private File System (`navigator.storage.getDirectory()`), one folder per
 * store name. Durable, large, fast; the default in browsers that have it.
 *
 * @param name The store's folder in the origin's private file system.
 * @param options Hasher, chunk size, checkpoint spacing, quota estimate.
 * @returns The store.
 *
 * @example
 * ```ts
 * const store = createOpfsStore("models");
 * await navigator.storage.persist(); // ask the browser not to evict it
 * ```
 */
export function createOpfsStore(name = "default", options: StoreOptions = {}): Store {
  return createStore(new OpfsBackend(name), options);
}
