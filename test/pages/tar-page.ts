// A page for the tar-layer browser test (issue 19): pulls a ModelPack model whose weights are tar
// layers through the proxy into OPFS or IndexedDB, logging every read of a stored blob, and reports
// the record, each file's digest as read back, and what the store holds.
import { createIdbStore, createOpfsStore, type OciError, pullModel, type Store } from "../../src/index.js";

export interface TarPullRequest {
  kind: "opfs" | "idb";
  /** The store's name: each test pulls into its own. */
  name: string;
  reference: string;
  proxy: string;
}

export interface TarPullResult {
  code?: string;
  message?: string;
  digest?: string;
  files?: {
    path: string;
    digest?: string;
    size: number;
    weight: boolean;
    layer?: { digest: string; size: number; offset: number };
  }[];
  weights?: string[];
  /** Reads of stored blobs during the pull: digest, offset, length. */
  reads?: { digest: string; offset: number; length: number }[];
  /** Each file's sha256 over the bytes `model.file(path)` reads back after the pull. */
  read?: Record<string, string>;
  usage?: { bytes: number; blobs: number; ingestBytes: number };
  blobs?: { digest: string; size: number }[];
}

declare global {
  interface Window {
    pullTar(request: TarPullRequest): Promise<TarPullResult>;
    /** Starts a pull and returns at once (the test reloads the page under it). */
    startTar(request: TarPullRequest): void;
    /** Bytes of interrupted pushes the store holds (their last checkpoints). */
    ingestBytes(kind: "opfs" | "idb", name: string): Promise<number>;
  }
}

const open = (kind: "opfs" | "idb", name: string) =>
  kind === "opfs" ? createOpfsStore(name) : createIdbStore(name);

async function sha256(buffer: ArrayBuffer): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

window.pullTar = async ({ kind, name, reference, proxy }) => {
  const base = open(kind, name);
  const reads: { digest: string; offset: number; length: number }[] = [];
  const store: Store = {
    ...base,
    fetch: (blob, options) => {
      const offset = options?.offset ?? 0;
      reads.push({ digest: blob.digest, offset, length: options?.length ?? blob.size - offset });
      return base.fetch(blob, options);
    },
  };
  try {
    // After a blob's first range, the rest in one request (as on a fast link): the reload test's
    // point (32 MiB held) needs the tar layer stored from its start; a reload under ranges side by
    // side is browser-faults' test.
    const model = await pullModel(reference, { store, proxy, ranges: { fastBytesPerSecond: 0 } });
    const during = reads.splice(0);
    const read: Record<string, string> = {};
    for (const path of model.files.keys()) read[path] = await sha256(await model.file(path).arrayBuffer());
    const { bytes, blobs, ingestBytes } = await base.usage();
    return {
      digest: model.digest,
      files: [...model.files.values()].map((f) => ({
        path: f.path,
        digest: f.digest,
        size: f.size,
        weight: f.weight,
        ...(f.layer ? { layer: { ...f.layer } } : {}),
      })),
      weights: [...model.weights],
      reads: during,
      read,
      usage: { bytes, blobs, ingestBytes },
      blobs: (await base.list()).map(({ digest, size }) => ({ digest, size })),
    };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
};

window.startTar = (request) => void window.pullTar(request);

window.ingestBytes = async (kind, name) => (await open(kind, name).usage()).ingestBytes;
