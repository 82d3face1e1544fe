import { createCacheStore, pullModel } from "oci-model-loader";
import { createRegistryProxy } from "oci-model-loader/proxy";

declare const Deno: {
  serve(
    options: { hostname: string; port: number },
    handler: (request: Request) => Promise<Response>,
  ): unknown;
}; // as Deno's own types have it

// deno run -A app.ts: a pull into Deno's Cache API
const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
  store: createCacheStore(await caches.open("models")), // or createMemoryStore()
});
const index = await model.tensorIndex(); // name → file, dtype, shape, offset, length
console.log(model.digest, index.size, (await model.readTensor("lm_head.bias")).byteLength);

// The registry proxy for pages (no DNS lookups here: the allow-list is what guards it).
const proxy = createRegistryProxy({ allow: ["dockerhub", "ghcr"], origins: ["https://app.example.com"] });
Deno.serve({ hostname: "127.0.0.1", port: 8787 }, (request) => proxy(request));
