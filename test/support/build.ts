import { execFileSync } from "node:child_process";

/** Vitest global setup: build dist/ (incremental) so tests can run the real `oci-model` binary. */
export default function setup(): void {
  execFileSync("npx", ["tsc", "-b", "src/node"], { stdio: "inherit" });
}
