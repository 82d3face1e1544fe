/**
 * Appends to OPFS files through `FileSystemSyncAccessHandle`s: 2–4× faster than `createWritable`
 * (which writes a swap file and moves it into place on close), but only available in dedicated
 * workers. In a dedicated worker the handles are used directly; elsewhere a small worker started
 * from a Blob URL holds them and the bytes are transferred to it, not copied. `undefined` when
 * neither works (no `Worker`, a CSP that refuses blob: workers, no sync access handles): the caller
 * then writes with `createWritable`.
 */
export interface SyncFiles {
  /** Opens `file` for appending at `size` (anything after it is cut off). */
  open(key: string, file: FileSystemFileHandle, size: number): Promise<void>;
  /**
   * Writes `bytes` at `at` of the open file. Takes ownership of `bytes` (it may be transferred), and
   * gives them back once written, for reuse.
   */
  write(key: string, at: number, bytes: Uint8Array): Promise<Uint8Array>;
  /**
   * Replaces the whole content of a small file (the checkpoint record of the files `keys`, open or
   * closed since): after the writes before it are made durable, and never once one of them failed.
   */
  put(keys: readonly string[], file: FileSystemFileHandle, bytes: Uint8Array): Promise<void>;
  /** Flushes and closes; the file can be read again (its lock is released). */
  close(key: string): Promise<void>;
}

/** What the DOM types (window-only) lack: the worker-only sync access handle. */
interface SyncAccessHandle {
  write(bytes: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}
type SyncCapableFile = FileSystemFileHandle & { createSyncAccessHandle(): Promise<SyncAccessHandle> };

type Op =
  | { kind: "open"; key: string; file: FileSystemFileHandle; size: number }
  | { kind: "write"; key: string; at: number; bytes: Uint8Array }
  | { kind: "put"; keys: readonly string[]; file: FileSystemFileHandle; bytes: Uint8Array }
  | { kind: "close"; key: string };

/**
 * The file work itself, run where sync access handles exist. Self-contained (no outside names):
 * its source text is also the body of the Blob-URL worker. Ops run one after another, in order.
 * After a failed write, every later write or record of that file fails too, closed or not: a
 * later write would leave a hole, and a record past it would be trusted on resume (a key is opened
 * once: a file opened again gets a new one).
 */
export function syncFileServer() {
  const handles = new Map<string, SyncAccessHandle>();
  const failed = new Map<string, unknown>();
  const get = (key: string) => {
    if (failed.has(key)) throw failed.get(key);
    const handle = handles.get(key);
    if (!handle) throw new DOMException(`no open file ${key}`, "InvalidStateError");
    return handle;
  };
  // At most 1 MiB per call: larger ones were slower and erratic under Linux 6.18 (ext4), from Node,
  // Chromium and dd alike (figures at MAX_WRITE in fs-store.ts).
  const MAX_WRITE = 1024 * 1024;
  const writeAll = async (handle: SyncAccessHandle, bytes: Uint8Array, at: number) => {
    for (let done = 0; done < bytes.byteLength; ) {
      const wrote = handle.write(bytes.subarray(done, done + MAX_WRITE), { at: at + done });
      // Chromium reports a full disk or quota by returning its error code as an unsigned count
      // (2^32 - 8 for "no space") instead of throwing.
      if (wrote === 2 ** 32 - 8) throw new DOMException("No space left for this write", "QuotaExceededError");
      // Firefox refuses a write the origin's quota cannot hold by writing nothing (it returns 0):
      // a full quota when what is left of it is less than the write, as the estimate says.
      if (wrote === 0) {
        const want = Math.min(MAX_WRITE, bytes.byteLength - done);
        const storage = (
          globalThis as {
            navigator?: { storage?: { estimate?: () => Promise<{ usage?: number; quota?: number }> } };
          }
        ).navigator?.storage;
        const estimate = await storage?.estimate?.().catch(() => undefined);
        const left = (estimate?.quota ?? Number.NaN) - (estimate?.usage ?? Number.NaN);
        if (left < want) {
          throw new DOMException(
            `No space left for this write (${want} bytes at ${at + done}, ${Math.max(0, left)} left of the quota)`,
            "QuotaExceededError",
          );
        }
      }
      if (!(wrote > 0 && wrote <= bytes.byteLength - done)) {
        throw new DOMException(
          `A write at ${at + done} failed (the browser returned ${wrote})`,
          "UnknownError",
        );
      }
      done += wrote;
    }
  };
  const perform = async (op: Op): Promise<void> => {
    if (op.kind === "open") {
      const handle = await (op.file as SyncCapableFile).createSyncAccessHandle();
      try {
        handle.truncate(op.size);
      } catch (error) {
        handle.close();
        throw error;
      }
      handles.set(op.key, handle);
    } else if (op.kind === "write") {
      try {
        await writeAll(get(op.key), op.bytes, op.at);
      } catch (error) {
        if (!failed.has(op.key)) failed.set(op.key, error);
        throw error;
      }
    } else if (op.kind === "put") {
      // The record must not outlive the bytes it counts (an OS crash); closed files were flushed.
      for (const key of op.keys) {
        if (failed.has(key)) throw failed.get(key);
        handles.get(key)?.flush();
      }
      const handle = await (op.file as SyncCapableFile).createSyncAccessHandle();
      try {
        handle.truncate(0);
        await writeAll(handle, op.bytes, 0);
      } finally {
        handle.close();
      }
    } else {
      const handle = handles.get(op.key);
      handles.delete(op.key);
      if (handle) {
        try {
          handle.flush();
        } finally {
          handle.close();
        }
      }
    }
  };
  let queue: Promise<unknown> = Promise.resolve();
  return (op: Op): Promise<void> => {
    const done = queue.then(() => perform(op));
    queue = done.catch(() => {});
    return done;
  };
}

/** The worker's script: says whether it can work, then runs ops, answering each by id. */
const WORKER_SOURCE = `const run = (${syncFileServer.toString()})();
postMessage({ ready: typeof FileSystemFileHandle?.prototype.createSyncAccessHandle === "function" });
onmessage = (event) => {
  const { id, op } = event.data;
  run(op).then(
    () => (op.kind === "write" ? postMessage({ id, bytes: op.bytes }, [op.bytes.buffer]) : postMessage({ id })),
    (error) => postMessage({ id, error: { name: error?.name ?? "Error", message: String(error?.message ?? error) } }),
  );
};`;

const READY_TIMEOUT_MS = 5000;

type Reply =
  | { ready: boolean }
  | { id: number; bytes?: Uint8Array; error?: { name: string; message: string } };

/** A worker that holds the handles, once it said it can; `undefined` if it cannot or did not start. */
function workerFiles(): Promise<SyncFiles | undefined> {
  let worker: Worker;
  try {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    worker = new Worker(url);
    URL.revokeObjectURL(url);
  } catch {
    return Promise.resolve(undefined); // a CSP without blob: in worker-src throws here
  }
  const pending = new Map<
    number,
    { resolve: (bytes?: Uint8Array) => void; reject: (error: unknown) => void }
  >();
  let nextId = 0;
  let broken: Error | undefined;
  const call = (op: Op, transfer: Transferable[] = []) =>
    new Promise<Uint8Array | undefined>((resolve, reject) => {
      if (broken) return reject(broken);
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, op }, transfer);
    });
  const files: SyncFiles = {
    open: async (key, file, size) => void (await call({ kind: "open", key, file, size })),
    write: (key, at, bytes) => {
      // Transfer whole buffers; copy a view of a bigger one (the rest may still be in use).
      const owned =
        bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      return call({ kind: "write", key, at, bytes: owned }, [owned.buffer as ArrayBuffer]).then(
        (back) => back ?? new Uint8Array(0),
      );
    },
    put: async (keys, file, bytes) => void (await call({ kind: "put", keys, file, bytes })),
    close: async (key) => void (await call({ kind: "close", key })),
  };
  return new Promise((resolve) => {
    // A worker that neither starts nor fails (it should take milliseconds) is given up on.
    const silent = setTimeout(() => {
      worker.terminate();
      resolve(undefined);
    }, READY_TIMEOUT_MS);
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      if ("ready" in reply) {
        clearTimeout(silent);
        if (!reply.ready) worker.terminate();
        return resolve(reply.ready ? files : undefined);
      }
      const waiter = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error) waiter?.reject(new DOMException(reply.error.message, reply.error.name));
      else waiter?.resolve(reply.bytes);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      clearTimeout(silent);
      broken = new Error(`the OPFS writer worker failed: ${event.message || "it could not start"}`);
      for (const waiter of pending.values()) waiter.reject(broken);
      pending.clear();
      resolve(undefined);
    };
  });
}

/** Calls the file work in this thread (a dedicated worker). */
function directFiles(): SyncFiles {
  const run = syncFileServer();
  return {
    open: (key, file, size) => run({ kind: "open", key, file, size }),
    write: async (key, at, bytes) => {
      await run({ kind: "write", key, at, bytes });
      return bytes;
    },
    put: (keys, file, bytes) => run({ kind: "put", keys, file, bytes }),
    close: (key) => run({ kind: "close", key }),
  };
}

let shared: Promise<SyncFiles | undefined> | undefined;

/** The sync-access-handle writer for this realm, or `undefined` where there is none. */
export function syncFiles(): Promise<SyncFiles | undefined> {
  shared ??= (async () => {
    const scope = globalThis as {
      DedicatedWorkerGlobalScope?: abstract new () => unknown;
      FileSystemFileHandle?: { prototype: object };
      Worker?: unknown;
    };
    if (!scope.FileSystemFileHandle) return undefined;
    if (scope.DedicatedWorkerGlobalScope && globalThis instanceof scope.DedicatedWorkerGlobalScope) {
      return "createSyncAccessHandle" in scope.FileSystemFileHandle.prototype ? directFiles() : undefined;
    }
    if (typeof scope.Worker !== "function" || typeof URL.createObjectURL !== "function") return undefined;
    return workerFiles();
  })();
  return shared;
}
