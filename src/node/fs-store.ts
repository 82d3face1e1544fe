import { openAsBlob, realpathSync } from "node:fs";
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
} from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import {
  createStore,
  type Descriptor,
  type IngestState,
  MediaType,
  type Span,
  type Store,
  type StoreBackend,
  type StoreOptions,
} from "../index.js";
import { isFileLocked, lockFile } from "./file-lock.js";
import { fileStream } from "./file-stream.js";
import { createNodeHasher } from "./hasher.js";

const REF_NAME = "org.opencontainers.image.ref.name";

function isMissing(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "ENOENT";
}

/** Flushes a folder's entries (a rename into it) to disk, where the platform can open folders. */
async function syncDir(path: string): Promise<void> {
  const dir = await open(path, "r").catch(() => undefined);
  try {
    await dir?.sync();
  } catch {
    // some platforms and file systems cannot fsync a folder
  } finally {
    await dir?.close();
  }
}

/**
 * Writes a file whole: aside, then renamed over it, or with `create` linked into place only if there
 * is none yet; a reader sees the old or the new file, never a part. `durable` flushes the file and
 * then its folder, so that a crash too leaves one or the other (a download's progress record needs
 * not: it is checked against the data on resume, and fsyncing it would flush the data with it).
 */
async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  { create = false, durable = false }: { create?: boolean; durable?: boolean } = {},
): Promise<void> {
  const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const file = await open(temp, "w");
  try {
    await file.writeFile(data);
    if (durable) await file.sync();
  } finally {
    await file.close();
  }
  try {
    if (!create) await rename(temp, path);
    else
      await link(temp, path).catch((error: unknown) => {
        if ((error as { code?: string }).code !== "EEXIST") throw error;
      });
  } finally {
    if (create) await rm(temp, { force: true });
  }
  if (durable) await syncDir(dirname(path));
}

function split(digest: string): [string, string] {
  const [algorithm = "", hex = ""] = digest.split(":");
  return [algorithm, hex];
}

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/**
 * The most one write call hands the kernel. Larger calls were slower and erratic on this project's
 * machine (Linux 6.18, ext4, which may cache a large aligned write in large folios): a 256 MiB pull
 * with 2 MiB calls took 0.74–0.84 s, with 1 MiB calls 0.48–0.53 s; `dd bs=2M` of 256 MiB took up to
 * 0.62 s where `bs=1M` always took 0.05 s. The OPFS writer (`opfs-sync.ts`) keeps the same bound.
 */
const MAX_WRITE = 1024 * 1024;

/** Writes all of `bytes` at `offset` of the file, `MAX_WRITE` at a time. */
async function writeFully(file: FileHandle, bytes: Uint8Array, offset: number): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) {
    const length = Math.min(bytes.byteLength - written, MAX_WRITE);
    const { bytesWritten } = await file.write(bytes, written, length, offset + written);
    written += bytesWritten;
  }
}

/** An OCI image layout on disk; ingests live in `ingest/`, never under `blobs/`. */
class FsBackend implements StoreBackend {
  readonly id: string;
  readonly #dir: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.#dir = resolve(dir);
    // One folder reached by two paths (a symlink) is one store: its locks live inside it, and
    // this realm's locks go by its real path.
    let real = this.#dir;
    try {
      real = realpathSync(this.#dir);
    } catch {
      // not there yet: created by the first call
    }
    this.id = `fs:${real}`;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(join(this.#dir, "blobs", "sha256"), { recursive: true });
      await mkdir(join(this.#dir, "ingest"), { recursive: true });
      // Created only where missing: another process may be writing its first tag meanwhile.
      for (const [name, content] of [
        ["oci-layout", { imageLayoutVersion: "1.0.0" }],
        ["index.json", { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }],
      ] as const) {
        try {
          await stat(join(this.#dir, name));
        } catch (error) {
          if (!isMissing(error)) throw error;
          await writeAtomic(join(this.#dir, name), `${JSON.stringify(content, null, 2)}\n`, {
            create: true,
            durable: true,
          });
        }
      }
    })();
    return this.#ready;
  }

  #blobPath(digest: string): string {
    const [algorithm, hex] = split(digest);
    return join(this.#dir, "blobs", algorithm, hex);
  }

  /** The lock of a digest's download, or of `tags` (index.json): a file in `ingest/`. */
  #lockPath(name: string): string {
    if (!/^[a-z0-9]+:[0-9a-f]+$|^tags$/.test(name)) throw new Error(`no lock is named ${name}`);
    return join(this.#dir, "ingest", `${name.replace(":", "-")}.lock`);
  }

  async acquire(name: string, signal?: AbortSignal) {
    await this.#init();
    return lockFile(this.#lockPath(name), signal);
  }

  async isLocked(name: string) {
    return isFileLocked(this.#lockPath(name));
  }

  #ingestPath(digest: string, kind: "data" | "state"): string {
    const [algorithm, hex] = split(digest);
    return join(this.#dir, "ingest", `${algorithm}-${hex}.${kind}`);
  }

  async has(digest: string) {
    await this.#init();
    try {
      return (await stat(this.#blobPath(digest))).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  #stream(path: string, offset: number, length: number): ReadableStream<Uint8Array> {
    return fileStream(path, offset, length);
  }

  async read(digest: string, offset: number, length: number) {
    return this.#stream(this.#blobPath(digest), offset, length);
  }

  /** A `Blob` backed by the blob's file (`fs.openAsBlob`): read from disk when read. */
  async blob(digest: string, offset: number, length: number) {
    return (await openAsBlob(this.#blobPath(digest))).slice(offset, offset + length);
  }

  async remove(digest: string) {
    await rm(this.#blobPath(digest), { force: true });
  }

  async blobs() {
    await this.#init();
    const out: { digest: string; size: number }[] = [];
    for (const algorithm of await readdir(join(this.#dir, "blobs"))) {
      for (const hex of await readdir(join(this.#dir, "blobs", algorithm))) {
        const info = await stat(join(this.#dir, "blobs", algorithm, hex));
        if (info.isFile()) out.push({ digest: `${algorithm}:${hex}`, size: info.size });
      }
    }
    return out;
  }

  async ingestState(digest: string): Promise<IngestState | undefined> {
    await this.#init();
    try {
      const raw = JSON.parse(await readFile(this.#ingestPath(digest, "state"), "utf8")) as {
        offset: number;
        updatedAt: number;
        hasherState?: string;
        spans?: Span[];
      };
      // Writes are not fsynced per chunk: after a crash the file may hold less than the checkpoint
      // says, so never resume past what is really there (the final digest check catches the rest).
      const size = await stat(this.#ingestPath(digest, "data")).then(
        (s) => s.size,
        () => 0,
      );
      return {
        offset: Math.min(raw.offset, size),
        updatedAt: raw.updatedAt,
        ...(raw.hasherState && size >= raw.offset
          ? { hasherState: Buffer.from(raw.hasherState, "base64") }
          : {}),
        // Spans are read back and hashed on resume; one past the end of the file is surely lost.
        ...(Array.isArray(raw.spans) ? { spans: raw.spans.filter((span) => !(span[1] > size)) } : {}),
      };
    } catch (error) {
      if (isMissing(error) || error instanceof SyntaxError) return undefined;
      throw error;
    }
  }

  /** Open ingest files, kept across the writes of one push (opening per chunk dominated the cost). */
  readonly #open = new Map<string, Promise<{ file: FileHandle; size: number }>>();

  #handle(digest: string) {
    let entry = this.#open.get(digest);
    if (!entry) {
      const path = this.#ingestPath(digest, "data");
      entry = (async () => {
        const file = await open(path, "r+").catch((error: unknown) => {
          if (isMissing(error)) return open(path, "w+");
          throw error;
        });
        return { file, size: (await file.stat()).size };
      })();
      this.#open.set(digest, entry);
      entry.catch(() => this.#open.delete(digest));
    }
    return entry;
  }

  async ingestRelease(digest: string) {
    const entry = this.#open.get(digest);
    this.#open.delete(digest);
    await (await entry?.catch(() => undefined))?.file.close();
  }

  async ingestWrite(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    await this.#init();
    const entry = await this.#handle(digest);
    if (offset > entry.size) throw new Error(`a write at ${offset} would leave a hole after ${entry.size}`);
    if (entry.size > offset) {
      await entry.file.truncate(offset);
      entry.size = offset;
    }
    await this.ingestWriteAt(digest, offset, bytes, recycle);
  }

  async ingestWriteAt(
    digest: string,
    offset: number,
    bytes: Uint8Array,
    recycle?: (bytes: Uint8Array) => void,
  ) {
    await this.#init();
    const entry = await this.#handle(digest);
    await writeFully(entry.file, bytes, offset);
    entry.size = Math.max(entry.size, offset + bytes.byteLength);
    recycle?.(bytes);
  }

  async ingestCheckpoint(digest: string, state: IngestState) {
    // A saved hasher state is trusted on resume without re-reading the bytes it covers: they must
    // be on disk before the record is (the default node:crypto hasher saves none, so costs nothing).
    // Spans past the offset are not synced: they are read back and hashed on resume, and bytes a
    // crash of the machine lost fail the digest (the download then starts over).
    if (state.hasherState) await (await this.#open.get(digest))?.file.datasync();
    const record = {
      offset: state.offset,
      updatedAt: state.updatedAt,
      ...(state.hasherState ? { hasherState: Buffer.from(state.hasherState).toString("base64") } : {}),
      ...(state.spans ? { spans: state.spans } : {}),
    };
    await writeAtomic(this.#ingestPath(digest, "state"), JSON.stringify(record));
  }

  async ingestRead(digest: string, offset: number, length: number) {
    return this.#stream(this.#ingestPath(digest, "data"), offset, length);
  }

  async ingestCommit(digest: string, size: number) {
    const data = this.#ingestPath(digest, "data");
    // On disk before it is renamed into blobs/ (and the rename after it): a committed blob is never
    // checked again, so a crash must not leave one short or zero-filled under its name.
    const { file } = await this.#handle(digest);
    await file.datasync();
    await this.ingestRelease(digest);
    if ((await stat(data)).size !== size) throw new Error(`ingest of ${digest} is not ${size} bytes`);
    const target = this.#blobPath(digest);
    await mkdir(dirname(target), { recursive: true });
    await rename(data, target);
    await syncDir(dirname(target));
    await rm(this.#ingestPath(digest, "state"), { force: true });
  }

  async ingestDiscard(digest: string) {
    await this.ingestRelease(digest);
    await rm(this.#ingestPath(digest, "data"), { force: true });
    await rm(this.#ingestPath(digest, "state"), { force: true });
  }

  async ingests() {
    await this.#init();
    const out: { digest: string; state: IngestState }[] = [];
    for (const name of await readdir(join(this.#dir, "ingest"))) {
      const match = /^([a-z0-9]+)-([0-9a-f]+)\.data$/.exec(name);
      if (!match) continue;
      const digest = `${match[1]}:${match[2]}`;
      const state = await this.ingestState(digest);
      const info = await stat(join(this.#dir, "ingest", name));
      out.push({ digest, state: state ?? { offset: 0, updatedAt: info.mtimeMs } });
    }
    return out;
  }

  async #readIndex(): Promise<IndexJson> {
    await this.#init();
    const index = JSON.parse(await readFile(join(this.#dir, "index.json"), "utf8")) as IndexJson;
    return { ...index, manifests: Array.isArray(index.manifests) ? index.manifests : [] };
  }

  async #writeIndex(index: IndexJson) {
    await writeAtomic(join(this.#dir, "index.json"), `${JSON.stringify(index, null, 2)}\n`, {
      durable: true,
    });
  }

  async readTags() {
    const tags = new Map<string, Descriptor>();
    for (const entry of (await this.#readIndex()).manifests) {
      const name = entry.annotations?.[REF_NAME];
      if (!name) continue;
      const { [REF_NAME]: _, ...rest } = entry.annotations ?? {};
      const { annotations: __, ...descriptor } = entry;
      tags.set(name, Object.keys(rest).length ? { ...descriptor, annotations: rest } : descriptor);
    }
    return tags;
  }

  async writeTags(tags: Map<string, Descriptor>) {
    const index = await this.#readIndex();
    const unnamed = index.manifests.filter((m) => !m.annotations?.[REF_NAME]);
    const named = [...tags].map(([name, d]) => ({
      ...d,
      annotations: { ...d.annotations, [REF_NAME]: name },
    }));
    await this.#writeIndex({ ...index, mediaType: MediaType.OciIndex, manifests: [...unnamed, ...named] });
  }

  async estimate() {
    await this.#init();
    const fs = await statfs(this.#dir);
    const quota = fs.blocks * fs.bsize;
    return { quota, usage: quota - fs.bavail * fs.bsize };
  }
}

/**
 * A store on disk in the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), so
 * `skopeo copy oci:DIR:NAME …` reads what it holds. Downloads in progress stay in `DIR/ingest/`.
 *
 * @param dir The layout's folder (created when missing).
 * @param options Store options (default hasher `node:crypto`, 512 KiB chunks).
 * @returns The store.
 *
 * @example
 * ```ts
 * const store = createFsStore(`${process.env.HOME}/.cache/oci-model`);
 * ```
 */
export function createFsStore(dir: string, options: StoreOptions = {}): Store {
  // 512 KiB chunks: one is written while the next is read and hashed. In interleaved runs on this
  // project's machine a 1 GiB pull ran at 0.63–0.72 GB/s with them, at 0.38–0.54 GB/s with 2 MiB
  // chunks (4 MiB: 0.39–0.48), likely because a chunk is copied, hashed and written while it is
  // still in the CPU's caches.
  return createStore(new FsBackend(dir), {
    createHasher: createNodeHasher,
    chunkSize: 512 * 1024,
    ...options,
  });
}
