import { ggufMetadata, openModel, remoteGgufMetadata, typedArray } from "oci-model-loader";

// From the registry, header bytes only (HTTP Range): no weights are fetched.
const remote = await remoteGgufMetadata("registry.example.com/ai/smollm2:360M-Q4_K_M");
console.log(remote.architecture, remote.contextLength, remote.tensorCount);

const model = await openModel("registry.example.com/ai/smollm2:360M-Q4_K_M"); // pulled before
const metadata = await ggufMetadata(model); // its GGUF file's header, from the store
const tokens = await metadata.array("tokenizer.ggml.tokens"); // read when asked for
console.log(tokens.length, metadata.chatTemplate, metadata.entries.get("general.name"));

const index = await model.tensorIndex();
console.log(index.get("blk.0.attn_q.weight")?.dtype); // "Q4_K": the ggml type
const blocks = typedArray("Q4_K", await model.readTensor("blk.0.attn_q.weight")); // raw block bytes
const norm = typedArray("F32", await model.readTensor("output_norm.weight")); // a Float32Array
console.log(blocks.byteLength, norm.length);
