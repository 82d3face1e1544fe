// A page for the browser fault tests: pulls through the proxy with a chosen store and checkpoint size.
import {
  createIdbStore,
  createOpfsStore,
  listModels,
  type OciError,
  pullModel,
  type RangeOptions,
  type StoreOptions,
} from "../../src/index.js";

interface PullRequest {
  kind: "opfs" | "idb";
  name: string;
  reference: string;
  proxy: string;
  chunkSize: number;
  /** Skip the up-front quota check, so the browser's own QuotaExceededError is met half-way. */
  skipEstimate?: boolean;
  /** How large blobs are fetched in ranges (the client's default when absent). */
  ranges?: RangeOptions;
}

declare global {
  interface Window {
    faultPull(request: PullRequest): Promise<Record<string, unknown>>;
    progress: number;
    faultModels(request: Pick<PullRequest, "kind" | "name">): Promise<number>;
  }
}

function store(request: Pick<PullRequest, "kind" | "name"> & Partial<PullRequest>) {
  const options: StoreOptions = {
    chunkSize: request.chunkSize ?? 1024 * 1024,
    checkpointBytes: request.chunkSize ?? 1024 * 1024,
    ...(request.skipEstimate ? { estimate: async () => undefined } : {}),
  };
  return request.kind === "opfs"
    ? createOpfsStore(request.name, options)
    : createIdbStore(request.name, options);
}

window.progress = 0;
window.faultPull = async (request) => {
  try {
    const model = await pullModel(request.reference, {
      store: store(request),
      proxy: request.proxy,
      ...(request.ranges ? { ranges: request.ranges } : {}),
      onProgress: (e) => {
        if (e.type === "progress") window.progress = e.overallLoaded / e.overallTotal;
      },
    });
    return { digest: model.digest };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
};
window.faultModels = async (request) => (await listModels(store(request))).length;
