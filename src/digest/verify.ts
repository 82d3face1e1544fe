import { OciError } from "../errors.js";
import type { CreateHasher, Hasher } from "./hasher.js";
import { parseDigest } from "./hasher.js";
import { createDefaultHasher } from "./hashers.js";

/** What a verified stream must match: the descriptor's digest and size. */
export interface ExpectedContent {
  digest: string;
  size: number;
}

export interface VerifyStreamOptions {
  /** Makes the hasher; defaults to feature-detected `createDefaultHasher`. */
  createHasher?: CreateHasher;
  /**
   * Bytes `[0, offset)` were verified elsewhere (a resumed download): the stream checks the rest.
   * Pass `hasher` holding the state after those bytes.
   */
  offset?: number;
  /** A hasher that has already hashed the first `offset` bytes. */
  hasher?: Hasher;
  /** Called with the total number of bytes seen (including `offset`) after each chunk. */
  onBytes?: (total: number) => void;
}

/**
 * A pass-through stream that hashes and counts what flows through it. It errors with `SIZE_MISMATCH`
 * as soon as more bytes than `expected.size` arrive or when the source ends short, and with
 * `DIGEST_MISMATCH` at the end when the hash differs. The last chunk is held back until the digest
 * matched, so a consumer that stops after `size` bytes (a cache, a file of known length) never
 * receives complete content that was wrong.
 *
 * @example
 * ```ts
 * declare const layer: Descriptor; // the digest and size the bytes must match
 * declare const response: Response; // the blob's GET
 * const verified = response.body?.pipeThrough(createVerifyStream(layer));
 * ```
 */
export function createVerifyStream(
  expected: ExpectedContent,
  options: VerifyStreamOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const { algorithm, hex } = parseDigest(expected.digest);
  if (options.offset && !options.hasher) {
    throw new OciError(
      "INVALID_ARGUMENT",
      "Cannot verify a resumed stream: pass the hasher of the first bytes",
    );
  }
  let hasher: Hasher;
  let seen = options.offset ?? 0;
  let held: Uint8Array | undefined;
  return new TransformStream<Uint8Array, Uint8Array>({
    async start() {
      hasher = options.hasher ?? (await (options.createHasher ?? createDefaultHasher)(algorithm));
    },
    async transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > expected.size) {
        throw new OciError(
          "SIZE_MISMATCH",
          `Cannot verify ${expected.digest}: received more than the declared ${expected.size} bytes`,
        );
      }
      await hasher.update(chunk);
      options.onBytes?.(seen);
      if (held) controller.enqueue(held);
      held = chunk;
    },
    async flush(controller) {
      if (seen < expected.size) {
        throw new OciError(
          "SIZE_MISMATCH",
          `Cannot verify ${expected.digest}: the content ended after ${seen} of ${expected.size} bytes`,
        );
      }
      const actual = await hasher.digest();
      if (actual !== hex) {
        throw new OciError(
          "DIGEST_MISMATCH",
          `Cannot verify ${expected.digest}: the content hashes to ${algorithm}:${actual}; it was corrupted or altered`,
        );
      }
      if (held) controller.enqueue(held);
    },
  });
}
