import { OciError } from "../errors.js";

/** A checkpoint (zip member, `.npy` header, torch tensor) that is not what it claims to be. */
export function invalidCheckpoint(what: string, reason: string): OciError {
  return new OciError("INVALID_CHECKPOINT", `Cannot read ${what}: ${reason}`);
}
