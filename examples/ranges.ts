import { createMemoryStore, pullModel } from "oci-model-loader";

// The defaults from a registry elsewhere than loopback, spelled out: a blob of 32 MiB or more comes
// as a first range of 16 MiB alone, then in ranges of 16 MiB, 8 at a time, while they pay; the rest
// in one request where they do not. Each range is written at its offset as it arrives: a resumed
// pull asks only for the holes between them.
const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
  store: createMemoryStore(),
  ranges: { connections: 8, chunkBytes: 16 * 1024 * 1024, atOffsets: true },
});
console.log(model.files);

// Ranges handed to the store in order (those ahead wait in memory, up to 128 MiB here): a resume
// fetches again what came in past the last checkpoint.
await pullModel("ghcr.io/acme/tiny-llm:v1", { store: createMemoryStore(), ranges: { atOffsets: false } });

// Every blob in one request, as skopeo and docker fetch it.
await pullModel("ghcr.io/acme/tiny-llm:v1", { store: createMemoryStore(), ranges: { connections: 1 } });
