import { env, pipeline } from "@huggingface/transformers";
import { createTransformersCache } from "oci-model-loader/transformers";

const wasm = env.backends.onnx.wasm;
if (wasm) wasm.wasmPaths = "/ort/"; // onnxruntime-web's dist/ files, served by the app (not a CDN)
env.useCustomCache = true; // model files come from the OCI model, verified and kept in OPFS
env.customCache = createTransformersCache({
  proxy: "https://oci-model-proxy.example.workers.dev", // registries send no CORS headers
  models: { "acme/tiny-bert": "ghcr.io/acme/tiny-bert:v1" }, // or use the id "oci:<reference>"
});
const extractor = await pipeline("feature-extraction", "oci:ghcr.io/acme/tiny-bert:v1", { dtype: "fp32" });
const embedding = await extractor("Pulled from an OCI registry", { pooling: "mean", normalize: true });
console.log(embedding.dims); // a DIGEST_MISMATCH or UNAUTHORIZED pull rejects pipeline() with its OciError
