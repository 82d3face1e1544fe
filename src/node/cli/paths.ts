import { stat } from "node:fs/promises";
import { OciError } from "../../index.js";

/** A path the user named must be there: a typo is NOT_FOUND, never an empty store created there. */
export async function mustExist(path: string, what: string, action: string, folder = false): Promise<void> {
  const found = await stat(path).catch(() => undefined);
  if (!found) throw new OciError("NOT_FOUND", `Cannot ${action}: ${path} does not exist (${what})`);
  if (folder && !found.isDirectory())
    throw new OciError("INVALID_ARGUMENT", `Cannot ${action}: ${path} is not a folder (${what})`);
}

/** `DIR:TAG`, an OCI layout and a name in it, as skopeo writes `oci:DIR:TAG`; the last colon splits. */
export function splitLayout(value: string): [string, string] {
  const colon = value.lastIndexOf(":");
  if (colon <= 0 || colon === value.length - 1) {
    throw new OciError("INVALID_ARGUMENT", `Cannot use layout "${value}": write it as DIR:TAG`);
  }
  return [value.slice(0, colon), value.slice(colon + 1)];
}
