import { randomUUID, sign } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { freePort, ProcessExitedError, run, startProcess, stopProcess, waitForHttp } from "./process.js";

/** The user every authenticated configuration knows. */
export const USER = { username: "alice", password: "s3cret pass" } as const;
export const SERVICE = "test-registry";
/**
 * The refresh token (Docker's identity token) the token server takes for USER in an OAuth2
 * `grant_type=refresh_token` POST, as Docker's registry client sends an `identitytoken`.
 */
export const REFRESH_TOKEN = "refresh-token-of-alice";
const ISSUER = "test-issuer";

export type AuthMode = "none" | "htpasswd" | "token";

export interface TokenRequest {
  scopes: string[];
  account: string | null;
  /** The user the request authenticated as, or null for anonymous. */
  user: string | null;
  /** An OAuth2 POST's `grant_type` and `client_id` (absent for the GET requests of the token spec). */
  grant?: string | null;
  clientId?: string | null;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** The storage root directory (filesystem driver). */
  root: string;
  auth: AuthMode;
  /** Requests seen by the token server (token mode). */
  tokenRequests: TokenRequest[];
  /** Headers of the blob requests the redirect target received (redirectBlobs). */
  blobRequests: IncomingHttpHeaders[];
  /** Paths of those requests, in the same order. */
  blobPaths: string[];
  /** Bytes the redirect target has sent (redirectBlobs). */
  blobBytes(): number;
  /** Path of a blob's data file in the registry's storage. */
  blobPath(digest: string): string;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  auth?: AuthMode;
  /** Serve blobs through a 307 redirect to another origin (Distribution's redirect middleware). */
  redirectBlobs?: boolean;
  /** Lifetime of issued tokens, in seconds (token mode). */
  tokenExpiresIn?: number;
  /** Picks the port to give the registry (default `freePort`); lets a test hand it a taken one. */
  pickPort?: () => Promise<number>;
}

/** Listens on a port the kernel picks (never one asked for and released earlier); returns it. */
function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (typeof address === "object" && address) resolve(address.port);
      else reject(new Error("the server has no port"));
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

async function makeCertificate(dir: string): Promise<{ key: string; certDer: string; certPath: string }> {
  const keyPath = join(dir, "token.key");
  const certPath = join(dir, "token.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-subj",
    "/CN=oci-model-loader test token issuer",
  ]);
  const pem = await readFile(certPath, "utf8");
  const certDer = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return { key: await readFile(keyPath, "utf8"), certDer, certPath };
}

/**
 * A token server in the shape of Docker's: RS256 JWTs whose header carries the issuing certificate
 * (`x5c`), which the registry trusts as its `rootcertbundle`. The user may pull and push anything;
 * anonymous callers may pull `public/*`.
 */
async function startTokenServer(dir: string, expiresIn: number) {
  const { key, certDer, certPath } = await makeCertificate(dir);
  const requests: TokenRequest[] = [];
  const server = createServer((req, res) => {
    if (req.method === "POST") {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => {
        body += chunk;
      });
      req.on("end", () => oauth(new URLSearchParams(body), req.headers["content-type"] ?? "", res));
      return;
    }
    const url = new URL(req.url ?? "/", "http://x");
    const scopes = url.searchParams.getAll("scope");
    let user: string | null = null;
    const header = req.headers.authorization;
    if (header) {
      const [scheme, value = ""] = header.split(" ");
      const [name, ...rest] = Buffer.from(value, "base64").toString("utf8").split(":");
      if (scheme !== "Basic" || name !== USER.username || rest.join(":") !== USER.password) {
        requests.push({ scopes, account: url.searchParams.get("account"), user: null });
        res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
        return;
      }
      user = name;
    }
    requests.push({ scopes, account: url.searchParams.get("account"), user });
    const token = issue(scopes, user);
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      }),
    );
  });
  /**
   * The OAuth2 token endpoint (distribution's spec/auth/oauth.md): a form POST with
   * `grant_type=refresh_token` (REFRESH_TOKEN) or `password` (USER); answers `access_token` only.
   */
  const oauth = (form: URLSearchParams, contentType: string, res: ServerResponse) => {
    const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
    const grant = form.get("grant_type");
    const clientId = form.get("client_id");
    const valid =
      contentType.startsWith("application/x-www-form-urlencoded") &&
      form.get("service") === SERVICE &&
      clientId !== null &&
      ((grant === "refresh_token" && form.get("refresh_token") === REFRESH_TOKEN) ||
        (grant === "password" &&
          form.get("username") === USER.username &&
          form.get("password") === USER.password));
    requests.push({ scopes, account: null, user: valid ? USER.username : null, grant, clientId });
    if (!valid) {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        access_token: issue(scopes, USER.username),
        scope: scopes.join(" "),
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      }),
    );
  };
  const issue = (scopes: string[], user: string | null): string => {
    const access = scopes.flatMap((scope) => {
      const [type, name = "", actions = ""] = scope.split(":");
      if (type !== "repository") return [];
      const granted = actions
        .split(",")
        .filter((a) => user !== null || (a === "pull" && name.startsWith("public/")));
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const head = base64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [certDer] }));
    const claims = base64url(
      JSON.stringify({
        iss: ISSUER,
        sub: user ?? "",
        aud: SERVICE,
        exp: now + expiresIn,
        nbf: now - 10,
        iat: now,
        jti: `${now}-${requests.length}-${Math.random()}`,
        access,
      }),
    );
    const signature = base64url(sign("sha256", Buffer.from(`${head}.${claims}`), key));
    return `${head}.${claims}.${signature}`;
  };
  const port = await listen(server);
  return { server, requests, certPath, realm: `http://127.0.0.1:${port}/token` };
}

/** A plain file server over the registry's storage: the target of its blob redirects. Honours
 * `Range`; records headers, paths and the bytes it sends. */
async function startBlobServer(root: string) {
  const requests: IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  const sent = { bytes: 0 };
  const server = createServer(async (req, res) => {
    requests.push(req.headers);
    paths.push(req.url ?? "");
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    if (!path.startsWith(root)) return void res.writeHead(403).end();
    try {
      const info = await stat(path);
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      const start = range ? Number(range[1]) : 0;
      const end = range?.[2] ? Math.min(Number(range[2]), info.size - 1) : info.size - 1;
      const length = Math.max(0, end - start + 1);
      res.writeHead(range ? 206 : 200, {
        "content-length": length,
        "content-type": "application/octet-stream",
        ...(range ? { "content-range": `bytes ${start}-${end}/${info.size}` } : {}),
      });
      sent.bytes += length;
      if (length === 0) return void res.end();
      createReadStream(path, { start, end }).pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  const port = await listen(server);
  return { server, requests, paths, sent, baseUrl: `http://127.0.0.1:${port}` };
}

/**
 * Starts CNCF Distribution (`docker-registry serve`) on 127.0.0.1, a random port and a temp dir,
 * anonymous, with htpasswd (Basic) auth, or with token auth against a token server of ours.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? "none";
  const dir = await mkdtemp(join(tmpdir(), "oml-registry-"));
  const root = join(dir, "storage");
  await mkdir(root);
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups) await step();
    await rm(dir, { recursive: true, force: true });
  };
  let tokenRequests: TokenRequest[] = [];
  let blobRequests: IncomingHttpHeaders[] = [];
  let blobPaths: string[] = [];
  let blobSent = { bytes: 0 };

  let authConfig = "";
  let middleware = "";
  try {
    if (auth === "htpasswd") {
      const { stdout } = await run("htpasswd", ["-Bbn", USER.username, USER.password]);
      await writeFile(join(dir, "htpasswd"), stdout);
      authConfig = `auth:\n  htpasswd:\n    realm: test-realm\n    path: ${join(dir, "htpasswd")}\n`;
    } else if (auth === "token") {
      const tokens = await startTokenServer(dir, options.tokenExpiresIn ?? 300);
      tokenRequests = tokens.requests;
      cleanups.push(() => closeServer(tokens.server));
      authConfig = [
        "auth:",
        "  token:",
        `    realm: ${tokens.realm}`,
        `    service: ${SERVICE}`,
        `    issuer: ${ISSUER}`,
        `    rootcertbundle: ${tokens.certPath}`,
        "",
      ].join("\n");
    }
    if (options.redirectBlobs) {
      const blobs = await startBlobServer(root);
      blobRequests = blobs.requests;
      blobPaths = blobs.paths;
      blobSent = blobs.sent;
      cleanups.push(() => closeServer(blobs.server));
      middleware = `middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: ${blobs.baseUrl}\n`;
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  // Every answer of this registry carries this header, so the wait below cannot mistake another
  // registry (another test file's, started on a port released at the same moment) for ours.
  const instance = randomUUID();
  const configPath = join(dir, "config.yml");
  // docker-registry must be told its port, so it is picked by freePort and released before the
  // registry binds it; someone else may take it in between. Then the registry exits with
  // "address already in use" and is started again on another port.
  for (let attempt = 1; ; attempt++) {
    const port = await (options.pickPort ?? freePort)();
    const config = [
      "version: 0.1",
      "log: { level: warn, accesslog: { disabled: true } }",
      "storage:",
      `  filesystem: { rootdirectory: ${root} }`,
      "  delete: { enabled: true }",
      "  maintenance: { uploadpurging: { enabled: false } }",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "  secret: oci-model-loader-tests",
      `  headers: { X-Test-Registry: [${instance}] }`,
      authConfig,
      middleware,
    ].join("\n");
    await writeFile(configPath, config);
    const { child, log, closed } = startProcess("docker-registry", ["serve", configPath]);
    const stop = async () => {
      await stopProcess(child);
      await cleanup();
    };
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v2/`, child, log, (response) =>
        isRegistryAnswer(response, instance),
      );
    } catch (error) {
      await stopProcess(child);
      await closed;
      if (attempt < REGISTRY_START_ATTEMPTS && error instanceof ProcessExitedError && bindFailed(log()))
        continue;
      await cleanup();
      throw error;
    }
    return {
      host: `127.0.0.1:${port}`,
      root,
      auth,
      tokenRequests,
      blobRequests,
      blobPaths,
      blobBytes: () => blobSent.bytes,
      blobPath: (digest) => {
        const hex = digest.slice("sha256:".length);
        return join(root, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
      },
      stop,
    };
  }
}

/** Times startRegistry tries a fresh port after the registry found its port taken. */
const REGISTRY_START_ATTEMPTS = 5;

/** The registry's log says its port was taken before it could bind it. */
export function bindFailed(log: string): boolean {
  return /bind: address already in use/.test(log);
}

/** An answer to `GET /v2/` from the registry we started: Distribution's API header and our instance header. */
export function isRegistryAnswer(response: Response, instance: string): boolean {
  return (
    response.headers.get("docker-distribution-api-version") === "registry/2.0" &&
    response.headers.get("x-test-registry") === instance
  );
}
