// A test worker: which hasher does the core pick inside workerd, and does it hash right?
import { createDefaultHasher, createWasmHasher } from "../../src/index.js";
import { digestBytes } from "../../src/internals.js";

export default {
  async fetch(): Promise<Response> {
    const bytes = new TextEncoder().encode("abc");
    const wasm = await createWasmHasher("sha256").then(
      () => "compiled",
      (e: unknown) => `refused: ${e instanceof Error ? e.message : String(e)}`,
    );
    return Response.json({
      digestStream: typeof (crypto as { DigestStream?: unknown }).DigestStream === "function",
      wasm,
      sha256: await digestBytes(bytes, createDefaultHasher),
      sha512: await digestBytes(bytes, createDefaultHasher, "sha512"),
    });
  },
};
