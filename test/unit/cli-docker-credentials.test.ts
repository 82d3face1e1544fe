import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isOciError } from "../../src/index.js";
import {
  dockerCredentialProvider,
  IDENTITY_TOKEN_USER,
  readDockerCredential,
  withIdentityTokens,
} from "../../src/node/docker-config.js";

let dir: string;
let env: NodeJS.ProcessEnv;

/** Puts `docker-credential-<name>` on the test PATH: a shell script with `body`. */
async function helper(name: string, body: string): Promise<void> {
  const path = join(dir, "bin", `docker-credential-${name}`);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
}

async function config(name: string, value: unknown): Promise<string> {
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify(value));
  return path;
}

async function failure(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOciError(error)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "oml-credentials-"));
  await mkdir(join(dir, "bin"));
  // only our helpers and the shell's basics: no docker-credential-* of the machine's
  env = { PATH: `${join(dir, "bin")}:/usr/bin:/bin` };
  // answers with the server URL it was asked for (stdin) in Username, and counts its runs
  await helper(
    "echo",
    `read -r url || true; echo run >> "${join(dir, "echo-runs")}"; printf '{"ServerURL":"%s","Username":"%s","Secret":"pw-of-%s"}' "$url" "$url" "$url"`,
  );
  await helper(
    "other",
    `cat > /dev/null; printf '{"ServerURL":"x","Username":"other-user","Secret":"other-pw"}'`,
  );
  await helper("notfound", "cat > /dev/null; echo 'credentials not found in native keychain'; exit 1");
  await helper(
    "broken",
    "cat > /dev/null; echo '{\"Secret\":\"leaked-secret\"}'; echo 'keychain is locked' >&2; exit 2",
  );
  await helper("garbage", "cat > /dev/null; echo 'Username=me Secret=leaked-secret'");
  await helper("slow", "exec sleep 20");
  await helper(
    "token",
    `cat > /dev/null; printf '{"ServerURL":"r","Username":"${IDENTITY_TOKEN_USER}","Secret":"refresh-1"}'`,
  );
  await helper("empty", `cat > /dev/null; printf '{"ServerURL":"r","Username":"","Secret":""}'`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("Docker config credentials (credHelpers > credsStore > auths)", () => {
  const auths = { auths: { "ghcr.io": { auth: Buffer.from("file-user:file-pw").toString("base64") } } };

  it("runs the credsStore helper with the registry host on stdin, and uses its answer over auths", async () => {
    const path = await config("store", { ...auths, credsStore: "echo" });
    expect(await readDockerCredential("ghcr.io", path, { env })).toEqual({
      username: "ghcr.io",
      password: "pw-of-ghcr.io",
    });
    expect(await readDockerCredential("localhost:5000", path, { env })).toEqual({
      username: "localhost:5000",
      password: "pw-of-localhost:5000",
    });
  });

  it("asks for Docker Hub by Docker's key, https://index.docker.io/v1/", async () => {
    const path = await config("hub", { credsStore: "echo" });
    expect(await readDockerCredential("docker.io", path, { env })).toEqual({
      username: "https://index.docker.io/v1/",
      password: "pw-of-https://index.docker.io/v1/",
    });
  });

  it("takes credHelpers[host] over credsStore, and only for that host", async () => {
    const path = await config("helpers", {
      ...auths,
      credsStore: "echo",
      credHelpers: { "ghcr.io": "other", "https://index.docker.io/v1/": "other" },
    });
    expect(await readDockerCredential("ghcr.io", path, { env })).toEqual({
      username: "other-user",
      password: "other-pw",
    });
    expect(await readDockerCredential("docker.io", path, { env })).toEqual({
      username: "other-user",
      password: "other-pw",
    });
    expect(await readDockerCredential("quay.io", path, { env })).toMatchObject({ username: "quay.io" });
    // an empty credHelpers entry turns credsStore off for its host, as in Docker: auths then
    const off = await config("off", { ...auths, credsStore: "echo", credHelpers: { "ghcr.io": "" } });
    expect(await readDockerCredential("ghcr.io", off, { env })).toEqual({
      username: "file-user",
      password: "file-pw",
    });
    // no helper at all: auths
    const plain = await config("plain", { ...auths, credHelpers: { "quay.io": "other" } });
    expect(await readDockerCredential("ghcr.io", plain, { env })).toEqual({
      username: "file-user",
      password: "file-pw",
    });
  });

  it("reads 'credentials not found' (and an empty answer) as none, as Docker does: no fallback to auths", async () => {
    const path = await config("notfound", { ...auths, credsStore: "notfound" });
    expect(await readDockerCredential("ghcr.io", path, { env })).toBeUndefined();
    const empty = await config("empty", { ...auths, credsStore: "empty" });
    expect(await readDockerCredential("ghcr.io", empty, { env })).toBeUndefined();
  });

  it("names a missing helper, and where the config names it", async () => {
    const path = await config("missing", { credHelpers: { "ghcr.io": "nope" } });
    const error = await failure(readDockerCredential("ghcr.io", path, { env }));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(/^Cannot get credentials for ghcr\.io from docker-credential-nope: /);
    expect(error.message).toContain("not on PATH");
    expect(error.message).toContain(`credHelpers in ${path}`);
  });

  it("reports a failing helper by its exit code and stderr, never its stdout", async () => {
    const path = await config("broken", { credsStore: "broken" });
    const error = await failure(readDockerCredential("ghcr.io", path, { env }));
    expect(error.code).toBe("UNAUTHORIZED");
    expect(error.message).toContain("docker-credential-broken");
    expect(error.message).toContain("code 2 (keychain is locked)");
    expect(error.message).not.toContain("leaked-secret");
    const garbage = await config("garbage", { credsStore: "garbage" });
    const bad = await failure(readDockerCredential("ghcr.io", garbage, { env }));
    expect(bad.code).toBe("UNAUTHORIZED");
    expect(bad.message).toMatch(/not JSON/);
    expect(bad.message).not.toContain("leaked-secret");
  });

  it("stops a helper that does not answer within the timeout", async () => {
    const path = await config("slow", { credsStore: "slow" });
    const started = Date.now();
    const error = await failure(readDockerCredential("ghcr.io", path, { env, timeout: 300 }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toMatch(/docker-credential-slow: it gave no answer within 0\.3 s/);
  });

  it("refuses a helper name that is a path", async () => {
    const path = await config("path", { credsStore: "../../bin/sh" });
    expect((await failure(readDockerCredential("ghcr.io", path, { env }))).code).toBe("INVALID_ARGUMENT");
  });

  it("returns identity tokens (auths identitytoken, a helper's <token> user) as Docker's <token> user", async () => {
    const path = await config("identity", {
      auths: {
        "ghcr.io": { auth: Buffer.from("someone:").toString("base64"), identitytoken: "refresh-0" },
      },
      credHelpers: { "quay.io": "token" },
    });
    expect(await readDockerCredential("ghcr.io", path, { env })).toEqual({
      username: IDENTITY_TOKEN_USER,
      password: "refresh-0",
    });
    expect(await readDockerCredential("quay.io", path, { env })).toEqual({
      username: IDENTITY_TOKEN_USER,
      password: "refresh-1",
    });
  });

  it("runs a helper once per host for a provider's life", async () => {
    const path = await config("memo", { credsStore: "echo" });
    await rm(join(dir, "echo-runs"), { force: true });
    const provider = dockerCredentialProvider(path, { env });
    const answers = await Promise.all([provider("ghcr.io"), provider("ghcr.io"), provider("quay.io")]);
    await provider("ghcr.io");
    expect(answers.map((a) => (a && "username" in a ? a.username : undefined))).toEqual([
      "ghcr.io",
      "ghcr.io",
      "quay.io",
    ]);
    expect((await readFile(join(dir, "echo-runs"), "utf8")).trim().split("\n")).toHaveLength(2);
  });
});

describe("withIdentityTokens", () => {
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

  function recorder() {
    const sent: { url: string; method: string; headers: Headers; body: string | undefined }[] = [];
    const fetch = withIdentityTokens(async (input, init) => {
      sent.push({
        url: String(input),
        method: init?.method ?? "GET",
        headers: new Headers(init?.headers),
        body: typeof init?.body === "string" ? init.body : undefined,
      });
      return new Response("{}");
    }, "test-client");
    return { sent, fetch };
  }

  it("sends the client's token request for <token> as an OAuth2 refresh_token POST to the realm", async () => {
    const { sent, fetch } = recorder();
    const url = new URL(
      "https://auth.example/token?service=reg&scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull&account=%3Ctoken%3E",
    );
    await fetch(url, { headers: { authorization: basic(IDENTITY_TOKEN_USER, "refresh:with:colons") } });
    expect(sent).toHaveLength(1);
    const [post] = sent;
    expect(post?.method).toBe("POST");
    expect(post?.url).toBe("https://auth.example/token");
    expect(post?.headers.get("authorization")).toBeNull();
    expect(post?.headers.get("content-type")).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(new URLSearchParams(post?.body))).toEqual({
      grant_type: "refresh_token",
      refresh_token: "refresh:with:colons",
      client_id: "test-client",
      service: "reg",
      scope: "repository:a:pull repository:b:pull",
    });
  });

  it("answers a refused grant (OAuth2's 400) as a refused login (401)", async () => {
    const fetch = withIdentityTokens(async () => new Response('{"error":"invalid_grant"}', { status: 400 }));
    const response = await fetch(new URL("https://auth.example/token?account=%3Ctoken%3E"), {
      headers: { authorization: basic(IDENTITY_TOKEN_USER, "refresh-0") },
    });
    expect(response.status).toBe(401);
    const other = withIdentityTokens(async () => new Response("no", { status: 400 }));
    expect((await other(new URL("https://reg.example/v2/"))).status).toBe(400);
  });

  it("never sends the refresh token anywhere else, and leaves other requests alone", async () => {
    const { sent, fetch } = recorder();
    await fetch(new URL("https://reg.example/v2/a/manifests/v1"), {
      headers: { authorization: basic(IDENTITY_TOKEN_USER, "refresh-0") },
    });
    expect(sent[0]?.method).toBe("GET");
    expect(sent[0]?.headers.get("authorization")).toBeNull();
    await fetch(new URL("https://auth.example/token?account=alice"), {
      headers: { authorization: basic("alice", "pw") },
    });
    expect(sent[1]?.method).toBe("GET");
    expect(sent[1]?.url).toBe("https://auth.example/token?account=alice");
    expect(sent[1]?.headers.get("authorization")).toBe(basic("alice", "pw"));
  });
});
