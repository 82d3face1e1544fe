import { createCacheStore, pullModel } from "oci-model-loader";

declare const caches: CacheStorage & { readonly default: Cache }; // as @cloudflare/workers-types has it

export default {
  async fetch(): Promise<Response> {
    const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
      store: createCacheStore(caches.default), // hashed with crypto.DigestStream on Workers
      weights: false, // manifest, config blob and config files only
    });
    return Response.json({ digest: model.digest, info: model.info, config: model.config });
  },
};
