import { persistStorage, pullModel } from "oci-model-loader";

const bar = document.body.appendChild(document.createElement("progress"));
await persistStorage(); // ask the browser not to evict the model
const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
  proxy: "https://oci-model-proxy.example.workers.dev", // registries send no CORS headers
  // store: createIdbStore("models"),                // default: OPFS, else IndexedDB, else memory
  onProgress: (e) => {
    if (e.type === "progress") bar.value = e.overallLoaded / e.overallTotal;
  },
});
const config = await model.file("config.json").json(); // a reload reopens it with one HEAD, no blob
const [firstShard] = model.weights; // weight files in load order
if (firstShard) {
  const header = await model.file(firstShard).stream({ offset: 0, length: 8 }); // a ranged read
  console.log(config, header);
}
