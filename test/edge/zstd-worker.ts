// A test worker: tar+zstd inside workerd. GET ?ref= pulls a model into a Cache API store and reports
// each file's size and sha256; POST ?native=0|1 decodes the zstd body (the runtime's decoder or fzstd)
// and reports what it decoded to, or the error.
import { decompressZstd, nativeZstdDecoder } from "../../src/archive/zstd.js";
import { createCacheStore, OciError, pullModel } from "../../src/index.js";

const hex = async (bytes: ArrayBuffer) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");

async function readAll(source: ReadableStream<Uint8Array>): Promise<ArrayBuffer> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  const reader = source.getReader();
  for (;;) {
    const next = await reader.read();
    if (next.done) return new Blob(parts).arrayBuffer();
    parts.push(next.value as Uint8Array<ArrayBuffer>);
  }
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const nativeZstd = nativeZstdDecoder() !== undefined;
    try {
      if (request.method === "POST") {
        const refuse = (reason: string) => new OciError("UNSAFE_ARCHIVE", reason);
        const decoded = await readAll(
          decompressZstd(
            request.body as ReadableStream<Uint8Array>,
            refuse,
            url.searchParams.get("native") !== "0",
          ),
        );
        return Response.json({ nativeZstd, size: decoded.byteLength, sha256: await hex(decoded) });
      }
      const store = createCacheStore((caches as unknown as { default: Cache }).default, {
        name: "edge-zstd",
      });
      const model = await pullModel(url.searchParams.get("ref") ?? "", { store });
      const files: Record<string, { size: number; sha256: string }> = {};
      for (const path of model.files.keys()) {
        const bytes = await model.file(path).arrayBuffer();
        files[path] = { size: bytes.byteLength, sha256: await hex(bytes) };
      }
      return Response.json({ nativeZstd, format: model.format, files, weights: model.weights });
    } catch (error) {
      return Response.json({ nativeZstd, code: (error as OciError).code, message: (error as Error).message });
    }
  },
};
