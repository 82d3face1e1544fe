import { createMemoryStore, pullModel } from "oci-model-loader";

// The defaults, spelled out: a blob of 32 MiB or more comes as a first range of 16 MiB alone, then
// in ranges of 16 MiB, 8 at a time, while they pay; the rest in one request where they do not.
// Ranges are handed to the store in order (those ahead wait in memory).
const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
  store: createMemoryStore(),
  ranges: { connections: 8, chunkBytes: 16 * 1024 * 1024, atOffsets: false },
});
console.log(model.files);

// Each range written at its offset as it arrives: a resumed pull asks only for the holes between them.
await pullModel("ghcr.io/acme/tiny-llm:v1", { store: createMemoryStore(), ranges: { atOffsets: true } });

// Every blob in one request, as skopeo and docker fetch it.
await pullModel("ghcr.io/acme/tiny-llm:v1", { store: createMemoryStore(), ranges: { connections: 1 } });
