// A page for the browser pull test: pulls a model through the proxy into OPFS or IndexedDB.
import { createIdbStore, createOpfsStore, type OciError, pullModel } from "../../src/index.js";

interface PullRequest {
  kind: "opfs" | "idb";
  reference: string;
  proxy: string;
  registry: string;
  username: string;
  password: string;
}

declare global {
  interface Window {
    pull(request: PullRequest): Promise<Record<string, unknown>>;
  }
}

window.pull = async (request) => {
  const store = request.kind === "opfs" ? createOpfsStore("pull-test") : createIdbStore("pull-test");
  try {
    const model = await pullModel(request.reference, {
      store,
      proxy: request.proxy,
      credentials: { [request.registry]: { username: request.username, password: request.password } },
    });
    return {
      digest: model.digest,
      format: model.format,
      config: await model.file("config.json").json(),
      weights: model.weights,
      files: [...model.files.keys()],
    };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
};
