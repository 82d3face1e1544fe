import { pullModel } from "oci-model-loader";
import { createFsStore, createNodeHasher, readDockerCredential } from "oci-model-loader/node";

const model = await pullModel("ghcr.io/acme/tiny-llm:v1", {
  store: createFsStore(`${process.env.HOME}/.cache/oci-model`), // an OCI layout skopeo can read
  createHasher: createNodeHasher, // node:crypto, ~1.7 GB/s
  credentials: readDockerCredential, // ~/.docker/config.json
  onProgress: (e) => e.type === "progress" && console.log(e.overallLoaded, "/", e.overallTotal),
});
console.log(model.format, model.info, model.weights); // weights in load order
const config = await model.file("config.json").json();
console.log(config);
