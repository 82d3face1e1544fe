import type { Credential, RegistryClientOptions } from "../../index.js";
import { OciError } from "../../index.js";
import { dockerConfigPath, dockerCredentialProvider, withIdentityTokens } from "../docker-config.js";
import { createNodeHasher } from "../hasher.js";
import type { CliIo } from "./command.js";

/** Flags every registry command takes. */
export const REGISTRY_FLAGS = {
  "plain-http": { type: "boolean" },
  username: { type: "string", short: "u" },
  "password-stdin": { type: "boolean" },
  timeout: { type: "string" },
  proxy: { type: "string" },
} as const;

/** The values of `REGISTRY_FLAGS`, as a command's parsed flags hold them. */
export interface RegistryFlags {
  "plain-http"?: boolean;
  username?: string;
  "password-stdin"?: boolean;
  timeout?: string;
  proxy?: string;
}

/**
 * Client options from the flags: credentials from `--username` + `--password-stdin` for the named
 * registry, else from the Docker config file as Docker reads it (`credHelpers`, `credsStore`, `auths`;
 * a helper gets `--timeout` to answer), identity tokens exchanged at the realm; `node:crypto` hashing.
 */
export async function clientOptions(
  flags: RegistryFlags,
  registry: string,
  io: CliIo,
): Promise<RegistryClientOptions> {
  let credential: Credential | undefined;
  if (flags.username !== undefined) {
    if (!flags["password-stdin"]) {
      throw new OciError(
        "INVALID_ARGUMENT",
        "Cannot log in: --username needs --password-stdin (pipe the password in)",
      );
    }
    const password = (await io.readStdin()).replace(/\r?\n$/, "");
    credential = { username: flags.username, password };
  } else if (flags["password-stdin"]) {
    throw new OciError("INVALID_ARGUMENT", "Cannot log in: --password-stdin needs --username");
  }
  const options: RegistryClientOptions = { createHasher: createNodeHasher, fetch: withIdentityTokens() };
  if (flags["plain-http"]) options.plainHttp = true;
  if (flags.proxy !== undefined) options.proxy = flags.proxy;
  if (flags.timeout !== undefined) {
    const seconds = Number(flags.timeout);
    if (!(seconds > 0))
      throw new OciError("INVALID_ARGUMENT", `Cannot use --timeout ${flags.timeout}: give seconds > 0`);
    options.timeout = seconds * 1000;
  }
  const docker = dockerCredentialProvider(dockerConfigPath(io.env), {
    env: io.env,
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
  });
  options.credentials = async (host) => (host === registry && credential ? credential : docker(host));
  return options;
}
