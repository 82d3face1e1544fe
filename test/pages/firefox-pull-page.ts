// A page for the Firefox pull tests: pulls through the proxy into OPFS or IndexedDB, with
// credentials, a chosen store name and checkpoint spacing, and the progress kept where a test reads it.
import {
  createIdbStore,
  createOpfsStore,
  type OciError,
  persistStorage,
  pullModel,
  type StoreOptions,
} from "../../src/index.js";

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
  }
}

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
