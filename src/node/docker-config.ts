import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Credential } from "../index.js";
import { OciError } from "../index.js";

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * The user name Docker gives an identity token (an OAuth2 refresh token): a credential helper
 * answers `{"Username": "<token>", "Secret": <refresh token>}`, and `readDockerCredential` returns an
 * `identitytoken` the same way. `withIdentityTokens` exchanges it at the token realm.
 */
export const IDENTITY_TOKEN_USER = "<token>";

/** Docker's key for Docker Hub in `auths`, `credHelpers` and what a helper is asked for. */
const HUB_KEY = "https://index.docker.io/v1/";
const HUB_HOSTS = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/** How long a credential helper may take before it is killed, by default. */
const HELPER_TIMEOUT_MS = 30_000;
/** A helper's answer larger than this is refused. */
const HELPER_OUTPUT_LIMIT = 1024 * 1024;
/** Docker's credential helpers print this (docker-credential-helpers' errCredentialsNotFoundMessage). */
const NOT_FOUND = /^credentials not found/i;

/**
 * The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
 *
 * @param env The environment to read `DOCKER_CONFIG` from (default `process.env`).
 * @returns The file's path (it may not exist).
 */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

/** Where `readDockerCredential` looks, and how it runs credential helpers. */
export interface DockerCredentialOptions {
  /** The environment helpers run in (their `PATH` finds them). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long a helper may take, in ms, before it is killed (`TIMEOUT`). Default 30 000. */
  timeout?: number;
}

/** Docker's key for a registry host: `https://index.docker.io/v1/` for Docker Hub, else the host. */
export function dockerConfigKey(registry: string): string {
  return HUB_HOSTS.includes(registry) ? HUB_KEY : registry;
}

function keyHost(key: string): string {
  return key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
}

/**
 * The `credHelpers` entry for a registry: its exact key first, then its host spellings. An entry
 * that is there but empty is "" (as in Docker, it turns `credsStore` off for that host).
 */
function credHelperFor(config: DockerConfig, registry: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  const key = dockerConfigKey(registry);
  const names = key === HUB_KEY ? [HUB_KEY, ...HUB_HOSTS] : [registry];
  for (const name of names) {
    const helper = helpers[name];
    if (Object.hasOwn(helpers, name) && typeof helper === "string") return helper;
  }
  return undefined;
}

/**
 * Reads credentials for `registry` as Docker does: the helper `credHelpers` names for it, else the
 * `credsStore` helper (`docker-credential-<name> get`, the registry's key on stdin: the host, or
 * `https://index.docker.io/v1/` for Docker Hub) — whose answer is final, "credentials not found"
 * meaning none —, else `auths` (`auth` = base64 `user:password`, `username`/`password`, or an
 * `identitytoken`). An identity token comes back as `{ username: "<token>", password: <token> }`
 * (`IDENTITY_TOKEN_USER`), Docker's own convention: pass the client `withIdentityTokens(fetch)` to
 * exchange it. Undefined when there is nothing. A helper that is missing, fails or times out is an
 * `OciError` naming it; its output is never put in a message (a helper may print secrets).
 *
 * @param registry The registry host, as in a reference (`docker.io`, `ghcr.io`, `localhost:5000`).
 * @param path The config file (default `dockerConfigPath()`).
 * @param options The helpers' environment and timeout.
 * @returns The credential, or undefined.
 */
export async function readDockerCredential(
  registry: string,
  path: string = dockerConfigPath(),
  options: DockerCredentialOptions = {},
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
  const own = credHelperFor(config, registry);
  const helper = own ?? config.credsStore;
  if (helper) {
    const where = own ? "credHelpers" : "credsStore";
    return runCredentialHelper(helper, dockerConfigKey(registry), {
      ...options,
      origin: `${where} in ${path}`,
    });
  }
  const candidates = HUB_HOSTS.includes(registry) ? [...HUB_HOSTS, HUB_KEY] : [registry];
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!candidates.includes(keyHost(key)) && !candidates.includes(key)) continue;
    if (entry.identitytoken) return { username: IDENTITY_TOKEN_USER, password: entry.identitytoken };
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

/**
 * A credential provider over the Docker config: `readDockerCredential` once per registry host (a
 * helper runs once, not per request), the answer kept for the provider's life.
 *
 * @param path The config file (default `dockerConfigPath(options.env)`).
 */
export function dockerCredentialProvider(
  path?: string,
  options: DockerCredentialOptions = {},
): (registry: string) => Promise<Credential | undefined> {
  const file = path ?? dockerConfigPath(options.env);
  const known = new Map<string, Promise<Credential | undefined>>();
  return (registry) => {
    let answer = known.get(registry);
    if (!answer) {
      answer = readDockerCredential(registry, file, options);
      known.set(registry, answer);
    }
    return answer;
  };
}

/**
 * Runs `docker-credential-<helper> get` with `serverUrl` on stdin, as Docker does, and reads its
 * `{ServerURL, Username, Secret}`. Undefined for "credentials not found" (or an empty answer).
 */
export function runCredentialHelper(
  helper: string,
  serverUrl: string,
  options: DockerCredentialOptions & { origin?: string } = {},
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  const action = `get credentials for ${serverUrl} from ${program}`;
  const named = options.origin ? ` (named by ${options.origin})` : "";
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) {
    return Promise.reject(
      new OciError("INVALID_ARGUMENT", `Cannot ${action}: "${helper}" is not a helper name${named}`),
    );
  }
  const timeout = options.timeout ?? HELPER_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: OciError | undefined, value?: Credential) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value);
    };
    const child = spawn(program, ["get"], {
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      child.stdout?.destroy();
      child.stderr?.destroy();
      finish(
        new OciError(
          "TIMEOUT",
          `Cannot ${action}: it gave no answer within ${timeout / 1000} s${named}; it was stopped`,
        ),
      );
    }, timeout);
    child.on("error", (error: NodeJS.ErrnoException) => {
      const missing = error.code === "ENOENT";
      finish(
        new OciError(
          missing ? "INVALID_ARGUMENT" : "UNAUTHORIZED",
          missing
            ? `Cannot ${action}: ${program} is not on PATH${named}; install it, or remove it from the Docker config`
            : `Cannot ${action}: it could not be started (${error.code ?? error.message})${named}`,
          { cause: error },
        ),
      );
    });
    child.stdin?.on("error", () => {}); // a helper that exits without reading its stdin
    child.stdin?.end(serverUrl);
    child.stdout?.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > HELPER_OUTPUT_LIMIT) {
        child.kill("SIGKILL");
        finish(new OciError("UNAUTHORIZED", `Cannot ${action}: its answer is over 1 MiB${named}`));
      } else stdout.push(chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.reduce((n, b) => n + b.byteLength, 0) < 64 * 1024) stderr.push(chunk);
    });
    child.on("close", (code, signal) => {
      const out = Buffer.concat(stdout).toString("utf8").trim();
      if (code !== 0) {
        if (NOT_FOUND.test(out)) return finish(undefined, undefined);
        // stdout is never quoted (helpers may print credentials); stderr's first line says why
        const why = Buffer.concat(stderr).toString("utf8").trim().split("\n")[0]?.slice(0, 200);
        return finish(
          new OciError(
            "UNAUTHORIZED",
            `Cannot ${action}: it exited with ${signal ? `signal ${signal}` : `code ${code}`}${why ? ` (${why})` : ""}${named}`,
          ),
        );
      }
      let answer: { Username?: unknown; Secret?: unknown };
      try {
        answer = JSON.parse(out);
      } catch {
        return finish(
          new OciError(
            "UNAUTHORIZED",
            `Cannot ${action}: its answer is not JSON {ServerURL, Username, Secret}`,
          ),
        );
      }
      const username = answer?.Username ?? "";
      const secret = answer?.Secret ?? "";
      if (typeof username !== "string" || typeof secret !== "string") {
        return finish(
          new OciError("UNAUTHORIZED", `Cannot ${action}: its Username and Secret are not strings`),
        );
      }
      if (secret === "") return finish(undefined, undefined);
      finish(undefined, { username, password: secret });
    });
  });
}

/** The refresh token of an `Authorization: Basic` header for Docker's `<token>` user, if it is one. */
function identityToken(authorization: string | null): string | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(authorization ?? "");
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const prefix = `${IDENTITY_TOKEN_USER}:`;
  return decoded.startsWith(prefix) ? decoded.slice(prefix.length) : undefined;
}

/**
 * Wraps a fetch so an identity token (Docker's `<token>` user, from `readDockerCredential`) works as
 * Docker's registry client makes it work: the token request the client sends to the realm (`GET
 * realm?service&scope&account=<token>` with Basic auth) goes out as an OAuth2 refresh-token grant
 * instead — `POST realm`, form `grant_type=refresh_token`, `refresh_token`, `service`, `scope`
 * (space-separated), `client_id` — whose `access_token` the client then uses. The realm is the one
 * the client accepted (https, or plain http where it allows it), so the refresh token goes nowhere
 * else; a `<token>` Basic header on any other request is dropped, never sent to the registry. A
 * refused grant (OAuth2's 400) is answered to the client as a 401, a refused login.
 *
 * @param base The fetch to wrap (default the global one).
 * @param clientId The OAuth2 `client_id` to send.
 */
export function withIdentityTokens(
  base: typeof fetch = (input, init) => fetch(input, init),
  clientId = "oci-model-loader",
): typeof fetch {
  return async (input, init) => {
    const request = input instanceof Request ? input : undefined;
    const headers = new Headers(init?.headers ?? request?.headers);
    const refresh = identityToken(headers.get("authorization"));
    if (refresh === undefined) return base(input, init);
    const url = new URL(request ? request.url : input instanceof URL ? input.href : String(input));
    headers.delete("authorization");
    if (url.searchParams.get("account") !== IDENTITY_TOKEN_USER || (init?.method ?? "GET") !== "GET") {
      return base(url, { ...init, headers });
    }
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refresh,
      client_id: clientId,
    });
    const service = url.searchParams.get("service");
    if (service !== null) form.set("service", service);
    const scopes = url.searchParams.getAll("scope");
    if (scopes.length > 0) form.set("scope", scopes.join(" "));
    for (const name of ["service", "scope", "account"]) url.searchParams.delete(name);
    headers.set("content-type", "application/x-www-form-urlencoded");
    const response = await base(url, { ...init, method: "POST", headers, body: form.toString() });
    // OAuth2 refuses a grant with 400 (invalid_grant): to the client that is a refused login (401)
    if (response.status !== 400) return response;
    await response.body?.cancel().catch(() => {});
    return new Response(null, { status: 401, statusText: "Unauthorized" });
  };
}
