// A test worker, bundled as wrangler bundles for Workers (the "workerd" condition): the hashers that
// need hash-wasm or @noble/hashes say they were left out; the default hasher still hashes.
import { createDefaultHasher, createJsHasher, createWasmHasher, type OciError } from "../../src/index.js";
import { digestBytes } from "../../src/internals.js";

const outcome = (made: Promise<unknown>) =>
  made.then(
    () => "made",
    (e: OciError) => `${e.code}: ${e.message}`,
  );

export default {
  async fetch(): Promise<Response> {
    return Response.json({
      wasm: await outcome(createWasmHasher("sha256")),
      js: await outcome(createJsHasher("sha512")),
      sha256: await digestBytes(new TextEncoder().encode("abc"), createDefaultHasher),
    });
  },
};
