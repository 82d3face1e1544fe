import { createMemoryStore, pullModel } from "oci-model-loader";

// The defaults, spelled out: a blob of 32 MiB or more comes as a first range of 16 MiB alone, then
// in ranges of 16 MiB, 8 at a time, while they pay; the rest in one request where they do not.
const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
  store: createMemoryStore(),
  ranges: { connections: 8, chunkBytes: 16 * 1024 * 1024 },
});
console.log(model.files);

// Every blob in one request, as skopeo and docker fetch it.
await pullModel("ghcr.io/acme/tiny-llm:v1", { store: createMemoryStore(), ranges: { connections: 1 } });
