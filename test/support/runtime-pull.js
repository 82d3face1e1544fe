// Run by Deno and Bun (test/integration/deno-bun.test.ts): pulls a model from the registry named on
// the command line with the built library, and prints what it read as one JSON line.
//   pull <ref> <tensor> [cache]  pull into a memory store (or, with `cache`, Deno's Cache API store)
//   proxy <registryHost> [direct-cache]  serve createRegistryProxy with Deno.serve or Bun.serve; print its URL,
//                               then log each request it served as a JSON line
import { createCacheStore, createMemoryStore, pullModel } from "../../dist/index.js";
import { createRegistryProxy } from "../../dist/proxy/index.js";

const args = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const [command, ...rest] = args;

if (command === "pull") {
  const [ref, tensor, storeName] = rest;
  const cacheName = `oci-model-loader-test-${Date.now()}`;
  const cache = storeName === "cache" ? await caches.open(cacheName) : undefined;
  const store = cache ? createCacheStore(cache) : createMemoryStore();
  const model = await pullModel(ref, { store });
  const index = await model.tensorIndex();
  const files = {};
  for (const [path, file] of model.files) files[path] = file.digest;
  const entries = {};
  for (const [name, entry] of index)
    entries[name] = { dtype: entry.dtype, shape: entry.shape, file: entry.file };
  const bytes = await model.readTensor(tensor);
  console.log(
    JSON.stringify({
      runtime: globalThis.Deno ? `deno ${globalThis.Deno.version.deno}` : `bun ${globalThis.Bun.version}`,
      digest: model.digest,
      files,
      weights: model.weights,
      index: entries,
      tensor: Array.from(bytes),
      cached: cache ? (await cache.keys()).length : undefined,
    }),
  );
  if (cache) await caches.delete(cacheName);
} else if (command === "proxy") {
  // `direct-cache` (Deno): a blob cache in Deno's Cache API, and the handler given to Deno.serve as it
  // is, so that Deno's second argument reaches it as the context.
  const direct = rest[1] === "direct-cache";
  const cache = direct ? await caches.open(`oci-model-loader-proxy-${Date.now()}`) : undefined;
  const handler = createRegistryProxy({ allow: [rest[0]], ...(cache ? { cache } : {}) });
  const logged = async (request, context) => {
    const response = await (direct ? handler(request, context) : handler(request));
    console.log(JSON.stringify({ served: new URL(request.url).pathname, status: response.status }));
    return response;
  };
  if (globalThis.Deno) {
    globalThis.Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(`http://127.0.0.1:${port}`) },
      logged,
    );
  } else {
    const server = globalThis.Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: logged });
    console.log(`http://127.0.0.1:${server.port}`);
  }
} else {
  throw new Error(`unknown command ${command}`);
}
