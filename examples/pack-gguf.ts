import { createMemoryStore, packModel, pushModel } from "oci-model-loader";
import { packFileFromPath, packFilesFromGguf } from "oci-model-loader/node";

// As `docker model package --gguf … --mmproj … --chat-template … --license … --context-size 4096`:
// every part of a split model is found beside the one named.
const store = createMemoryStore();
const packed = await packModel(await packFilesFromGguf("./smollm2-00001-of-00002.gguf"), {
  store,
  mmproj: await packFileFromPath("./mmproj-f16.gguf", "--mmproj"),
  chatTemplate: await packFileFromPath("./template.jinja", "--chat-template"),
  licenses: [await packFileFromPath("./LICENSE", "--license")],
  contextSize: 4096,
});
await pushModel(store, packed.descriptor, "registry.example.com/ai/smollm2:360M-Q4_K_M");
