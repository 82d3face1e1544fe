// A Cloudflare Worker that bundles pullModel itself: it pulls a model into the Workers cache (a Cache API
// store), then answers with its files, its tensor index and one tensor's values. Weights in zip
// containers (PyTorch .bin/.pt, NumPy .npz) are read in the Worker too.
//   npx wrangler deploy --config edge/pull/wrangler.toml
//   GET /?ref=<registry>/<repository>:<tag>&tensor=<name>
import { createCacheStore, isOciError, parseReference, pullModel, typedArray } from "../../src/index.js";

export interface Env {
  /** Comma-separated registry hosts a `ref` may name (the Worker fetches nothing else). Required. */
  REGISTRIES?: string;
}

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

async function pull(url: URL, env: Env): Promise<Response> {
  const ref = url.searchParams.get("ref") ?? "";
  const registry = parseReference(ref).registry;
  if (!list(env.REGISTRIES).includes(registry)) {
    return Response.json(
      { code: "DENIED", message: `Cannot pull ${ref}: ${registry} is not in REGISTRIES` },
      { status: 403 },
    );
  }
  const store = createCacheStore((caches as unknown as { default: Cache }).default, { name: "models" });
  const model = await pullModel(ref, { store });
  const index = await model.tensorIndex();
  const name = url.searchParams.get("tensor");
  const entry = name === null ? undefined : index.get(name);
  return Response.json({
    digest: model.digest,
    format: model.format,
    files: Object.fromEntries([...model.files].map(([path, file]) => [path, file.size])),
    index: Object.fromEntries(
      [...index].map(([tensor, e]) => [tensor, { dtype: e.dtype, shape: e.shape, file: e.file }]),
    ),
    ...(name !== null && entry
      ? {
          tensor: Array.from(
            typedArray(entry.dtype, await model.readTensor(name)) as ArrayLike<number | bigint>,
            Number,
          ),
        }
      : {}),
  });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    try {
      return await pull(new URL(request.url), env);
    } catch (error) {
      if (!isOciError(error)) throw error;
      return Response.json({ code: error.code, message: error.message }, { status: error.status ?? 502 });
    }
  },
};
