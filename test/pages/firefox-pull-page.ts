// A page for the Firefox pull tests: pulls through the proxy into OPFS or IndexedDB, with
// credentials, a chosen store name and checkpoint spacing, and the progress kept where a test reads it.
import {
  createCacheStore,
  createIdbStore,
  createOpfsStore,
  type OciError,
  persistStorage,
  pullModel,
  type Store,
  type StoreOptions,
} from "../../src/index.js";
import { syncFiles } from "../../src/store/opfs-sync.js";
import { blobOf } from "../support/blobs.js";

interface PullRequest {
  kind: "opfs" | "idb";
  name: string;
  reference: string;
  proxy: string;
  registry: string;
  username: string;
  password: string;
  chunkSize: number;
}

declare global {
  interface Window {
    firefoxPull(request: PullRequest): Promise<Record<string, unknown>>;
    progress: number;
    firefoxPersist(): Promise<boolean>;
    /** How the OPFS store appends in this page, as its feature detection found. */
    pullPageWriter(): Promise<string>;
    /** Pushes half of a 2 MiB blob and stalls there, holding the download; resolves with its digest. */
    stalledPush(kind: Medium, name: string): Promise<string>;
    /** gc of stale downloads (any age): the ones it removed. */
    gcIngests(kind: Medium, name: string): Promise<string[]>;
  }
}

type Medium = "opfs" | "idb" | "cache";
const media: Record<Medium, (name: string) => Store> = {
  opfs: (name) => createOpfsStore(name, { chunkSize: 256 * 1024, checkpointBytes: 1 }),
  idb: (name) => createIdbStore(name, { chunkSize: 256 * 1024, checkpointBytes: 1 }),
  cache: (name) => createCacheStore(name, { chunkSize: 256 * 1024, checkpointBytes: 1 }),
};

window.stalledPush = async (kind, name) => {
  const { bytes, descriptor } = await blobOf(2 * 1024 * 1024);
  let sent = 0;
  return new Promise<string>((resolve) => {
    const source = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= 1024 * 1024) {
          resolve(descriptor.digest);
          return new Promise<void>(() => {}); // stalled, holding the download's lock
        }
        controller.enqueue(bytes.slice(sent, sent + 256 * 1024));
        sent += 256 * 1024;
      },
    });
    media[kind](name)
      .push(descriptor, source)
      .catch(() => {});
  });
};
window.gcIngests = async (kind, name) => (await media[kind](name).gc({ ingestMaxAgeMs: -1 })).removedIngests;

window.pullPageWriter = async () => ((await syncFiles()) ? "sync access handles" : "createWritable");
window.progress = 0;
window.firefoxPersist = () => persistStorage();
window.firefoxPull = async (request) => {
  const options: StoreOptions = { chunkSize: request.chunkSize, checkpointBytes: request.chunkSize };
  const store =
    request.kind === "opfs" ? createOpfsStore(request.name, options) : createIdbStore(request.name, options);
  try {
    const model = await pullModel(request.reference, {
      store,
      proxy: request.proxy,
      credentials: { [request.registry]: { username: request.username, password: request.password } },
      onProgress: (e) => {
        if (e.type === "progress") window.progress = e.overallLoaded / e.overallTotal;
      },
    });
    const files: Record<string, string> = {};
    for (const path of model.files.keys()) {
      const bytes = new Uint8Array(await model.file(path).arrayBuffer());
      const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      files[path] = Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    return {
      digest: model.digest,
      format: model.format,
      config: await model.file("config.json").json(),
      weights: model.weights,
      files,
    };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
};
