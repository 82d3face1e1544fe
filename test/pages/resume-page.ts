// A page for the reload test: pushes the server's /blob into a browser store through fetch + Range.
import { createIdbStore, createOpfsStore, type OciError, type Store } from "../../src/index.js";

declare global {
  interface Window {
    pushBlob(kind: "opfs" | "idb", digest: string, size: number): Promise<Record<string, unknown>>;
    readBlob(kind: "opfs" | "idb", digest: string, size: number): Promise<string>;
  }
}

const stores: Record<string, () => Store> = {
  opfs: () => createOpfsStore("reload-test"),
  idb: () => createIdbStore("reload-test"),
};

window.pushBlob = async (kind, digest, size) => {
  const store = (stores[kind] as () => Store)();
  try {
    const result = await store.push({ digest, size }, async (offset) => {
      const response = await fetch("/blob", { headers: offset ? { range: `bytes=${offset}-` } : {} });
      return response.body as ReadableStream<Uint8Array>;
    });
    return { ...result };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
};

window.readBlob = async (kind, digest, size) => {
  const store = (stores[kind] as () => Store)();
  const bytes = await new Response(await store.fetch({ digest, size })).arrayBuffer();
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
};
