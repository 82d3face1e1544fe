// Web APIs only (used in Node, Chromium and workerd).
import type { OciError } from "../../src/index.js";

/** The error a promise rejects with; throws if it resolves. */
export async function failure(promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise;
  } catch (e) {
    return e as OciError;
  }
  throw new Error("it succeeded");
}
