import { createMemoryStore, pullModel } from "oci-model-loader";
import { createRegistryProxy } from "oci-model-loader/proxy";

declare const Bun: {
  serve(options: { hostname: string; port: number; fetch: (request: Request) => Promise<Response> }): {
    url: URL;
  };
}; // as bun-types has it

// bun run app.ts: a pull into memory
const model = await pullModel("ghcr.io/acme/tiny-llm:v1", { store: createMemoryStore() });
const index = await model.tensorIndex(); // name → file, dtype, shape, offset, length
console.log(model.digest, index.size, (await model.readTensor("lm_head.bias")).byteLength);

// The registry proxy for pages (no DNS lookups here: the allow-list is what guards it).
const proxy = createRegistryProxy({ allow: ["dockerhub", "ghcr"], origins: ["https://app.example.com"] });
const server = Bun.serve({ hostname: "127.0.0.1", port: 8787, fetch: (request) => proxy(request) });
console.log(`registry proxy on ${server.url}`); // pages pass { proxy: server.url }
