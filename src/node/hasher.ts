import { createHash } from "node:crypto";
import type { CreateHasher } from "../index.js";

/** `node:crypto` sha256/sha512: about six times faster than WASM. No saved state: resume re-hashes the stored prefix. */
export const createNodeHasher: CreateHasher = async (algorithm) => {
  const hash = createHash(algorithm);
  return {
    update: (data) => void hash.update(data),
    digest: async () => hash.digest("hex"),
  };
};
