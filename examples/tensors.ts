import { openModel, requestModelDevice, uploadToGPU } from "oci-model-loader";

const model = await openModel("ghcr.io/acme/tiny-llm:v1"); // pulled before: no network request
const index = await model.tensorIndex(); // name → file, dtype, shape, offset, length (headers only)
for await (const t of model.tensors()) {
  console.log(t.name, t.dtype, t.shape, (await t.data()).byteLength); // each file read once
}
const bias = await model.readTensor("lm_head.bias"); // a ranged read

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await requestModelDevice(adapter); // the adapter's largest buffers
const buffers = await uploadToGPU(device, model, {
  convert: true, // F16/BF16 → F32 on the GPU (no shader-f16 needed)
  expected: ["model.embed_tokens.weight"], // INVALID_CHECKPOINT lists any that are missing
  onProgress: ({ loaded, total }) => console.log(loaded / total),
});
console.log(index.size, bias.byteLength, buffers.get("model.embed_tokens.weight")?.size);
