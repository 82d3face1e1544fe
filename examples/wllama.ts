import { CacheManager, Wllama } from "@wllama/wllama";
import { createOpfsStore, pullModel } from "oci-model-loader";
import { createWllamaStorage, loadWllamaModel } from "oci-model-loader/wllama";

const store = createOpfsStore("models");
const model = await pullModel("ghcr.io/acme/tiny-llama:v1", {
  store, // verified while it streams, resumable, kept in OPFS
  proxy: "https://oci-model-proxy.example.workers.dev", // registries send no CORS headers
});
const wasm = { default: "/assets/wllama.wasm" }; // @wllama/wllama/esm/wasm/wllama.wasm, served by the app
const wllama = new Wllama(wasm);
await loadWllamaModel(wllama, model, { params: { n_ctx: 2048 } }); // one file or split, in order
const out = await wllama.createCompletion({ prompt: "Once upon a time", max_tokens: 32, temperature: 0 });
console.log(out.choices[0]?.text);

// Or let wllama's own cache read the store: no request, no download into a second cache.
const storage = createWllamaStorage(store);
const cached = new Wllama(wasm, { cacheManager: new CacheManager([storage]) });
await cached.loadModelFromUrl(await storage.addModel(model));
