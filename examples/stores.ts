import { createOpfsStore, createRemoteStore, inspectModel, persistStorage } from "oci-model-loader";

const proxy = "https://oci-model-proxy.example.workers.dev";
const store = createOpfsStore("models");
await persistStorage(); // ask the browser not to evict it
const { layers } = await inspectModel("ghcr.io/acme/tiny-llm:v1", { proxy }); // the manifest only
const remote = createRemoteStore("ghcr.io/acme/tiny-llm", { proxy }); // the registry as a read-only store
for (const layer of layers) {
  // Verified while it is written; a copy cut short resumes with a Range request for the rest.
  await store.push(layer, (offset) => remote.fetch(layer, { offset, length: layer.size - offset }), {
    onProgress: (bytes, total) => console.log(layer.path, bytes, total),
  });
}
console.log(await store.usage(), await store.verify()); // verify re-hashes every blob
