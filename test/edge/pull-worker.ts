// A test worker: pulls a model inside workerd into a Cache API store on caches.default.
import { createCacheStore, type OciError, pullModel } from "../../src/index.js";

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const reference = url.searchParams.get("ref") ?? "";
    // ?chunk=N: large blobs in ranges of N bytes, 4 at a time (the default is 16 MiB ranges).
    const chunk = Number(url.searchParams.get("chunk") ?? 0);
    const ranges = chunk
      ? { chunkBytes: chunk, connections: 4, fastBytesPerSecond: Number.POSITIVE_INFINITY }
      : {};
    const store = createCacheStore((caches as unknown as { default: Cache }).default, { name: "edge-pull" });
    try {
      const model = await pullModel(reference, { store, ranges });
      const sizes: Record<string, number> = {};
      for (const path of model.files.keys()) sizes[path] = (await model.file(path).arrayBuffer()).byteLength;
      return Response.json({
        digest: model.digest,
        format: model.format,
        config: await model.file("config.json").json(),
        sizes,
      });
    } catch (error) {
      return Response.json({ code: (error as OciError).code, message: (error as Error).message });
    }
  },
};
