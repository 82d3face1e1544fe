import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Credential } from "../index.js";
import { OciError } from "../index.js";

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
}

/**
 * The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
 *
 * @param env The environment to read `DOCKER_CONFIG` from (default `process.env`).
 * @returns The file's path (it may not exist).
 */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

const HUB_KEYS = ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"];

function keyHost(key: string): string {
  return key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
}

/**
 * Reads credentials for `registry` from the Docker config's `auths` (`auth` = base64 `user:password`,
 * or `username`/`password`). Credential helpers (`credsStore`) are not run. Undefined when absent.
 *
 * @param registry The registry host, as in a reference (`docker.io`, `ghcr.io`, `localhost:5000`).
 * @param path The config file (default `dockerConfigPath()`).
 * @returns The credential, or undefined.
 */
export async function readDockerCredential(
  registry: string,
  path: string = dockerConfigPath(),
): Promise<Credential | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  let config: DockerConfig;
  try {
    config = JSON.parse(text);
  } catch (cause) {
    throw new OciError("INVALID_ARGUMENT", `Cannot read ${path}: it is not valid JSON`, { cause });
  }
  const candidates = registry === "docker.io" ? [registry, ...HUB_KEYS] : [registry];
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!candidates.includes(keyHost(key)) && !candidates.includes(key)) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0)
        throw new OciError(
          "INVALID_ARGUMENT",
          `Cannot read ${path}: the auth for ${key} is not user:password`,
        );
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  }
  return undefined;
}
