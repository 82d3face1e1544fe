import { pullModel } from "oci-model-loader";
import { createOnnxSession } from "oci-model-loader/onnxruntime";
import * as ort from "onnxruntime-web";

ort.env.wasm.wasmPaths = "/ort/"; // onnxruntime-web's dist/ files, served by the app (not a CDN)
const model = await pullModel("ghcr.io/acme/tiny-bert:v1", {
  proxy: "https://oci-model-proxy.example.workers.dev", // registries send no CORS headers
});
// onnx/model.onnx and its external data (onnx/model.onnx_data) read from the store, the data as Blobs
const session = await createOnnxSession(ort, model, { sessionOptions: { executionProviders: ["wasm"] } });
const ids = (values: number[]) =>
  new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [1, values.length]);
const out = await session.run({
  input_ids: ids([2, 88, 3]),
  attention_mask: ids([1, 1, 1]),
  token_type_ids: ids([0, 0, 0]),
});
console.log(out.last_hidden_state?.dims);
