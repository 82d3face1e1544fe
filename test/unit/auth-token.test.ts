// The token cache of the Authenticator, driven directly: which credential and which origin a cached
// token may be handed to, when it must be fetched again, and what the token request asks for.
import { describe, expect, it } from "vitest";
import { Authenticator } from "../../src/registry/auth.js";
import type { Credential } from "../../src/registry/credentials.js";
import { failure } from "../support/failure.js";

const REALM = "https://auth.test/token";
/** A Bearer challenge; `service` null: none. */
const challengeOf = (realm = REALM, service: string | null = "svc", scope?: string) =>
  `Bearer realm="${realm}"${service === null ? "" : `,service="${service}"`}${scope ? `,scope="${scope}"` : ""}`;

/**
 * An Authenticator whose token server hands out `t1`, `t2`… and records each request; `clock` is
 * its `now`. `answer` replaces the token server's answer (a failure, a late reply).
 */
function harness(
  options: {
    credentials?: Record<string, Credential>;
    answer?: (n: number) => Response | Promise<Response>;
    expiresIn?: number;
  } = {},
) {
  const requests: { url: URL; authorization: string | null }[] = [];
  const state = { clock: 1_000_000 };
  const auth = new Authenticator({
    credentials: options.credentials,
    now: () => state.clock,
    allowsPlainHttp: () => false,
    send: async (url, init) => {
      requests.push({ url, authorization: new Headers(init.headers).get("authorization") });
      const n = requests.length;
      if (options.answer) return options.answer(n);
      return Response.json({
        token: `t${n}`,
        ...(options.expiresIn === undefined ? {} : { expires_in: options.expiresIn }),
      });
    },
  });
  /** Answers `origin`'s Bearer challenge for `registry`, as the transport does after a 401. */
  const challenge = (
    origin = "https://reg.test",
    scopes = ["repository:ns/m:pull"],
    header = challengeOf(),
    rejected?: string,
    registry = new URL(origin).host,
    signal?: AbortSignal,
  ) => auth.challenge(registry, origin, header, scopes, rejected, signal);
  /** The header sent up front to `origin`, once its challenge is known. */
  const upFront = (origin = "https://reg.test", scopes = ["repository:ns/m:pull"], signal?: AbortSignal) =>
    auth.authorization(new URL(origin).host, origin, scopes, signal);
  return { auth, requests, state, challenge, upFront };
}

describe("token cache", () => {
  it("reuses a token for the same origin, login, realm, service and scopes, whatever the scopes' order", async () => {
    const h = harness();
    expect(await h.challenge("https://reg.test", ["b:pull", "a:pull"])).toBe("Bearer t1");
    expect(await h.upFront("https://reg.test", ["a:pull", "b:pull"])).toBe("Bearer t1");
    expect(await h.upFront("https://reg.test", ["b:pull", "a:pull"])).toBe("Bearer t1");
    expect(h.requests).toHaveLength(1);
  });

  it("fetches a token of its own for other scopes", async () => {
    const h = harness();
    expect(await h.challenge("https://reg.test", ["a:pull"])).toBe("Bearer t1");
    expect(await h.upFront("https://reg.test", ["a:pull", "b:pull"])).toBe("Bearer t2");
    expect(h.requests).toHaveLength(2);
  });

  it("never hands one origin's token to another origin, even for the same realm, service and scopes", async () => {
    const h = harness();
    expect(await h.challenge("https://a.test")).toBe("Bearer t1");
    expect(await h.challenge("https://b.test")).toBe("Bearer t2");
    expect(await h.upFront("https://a.test")).toBe("Bearer t1");
    expect(await h.upFront("https://b.test")).toBe("Bearer t2");
    expect(h.requests).toHaveLength(2);
  });

  it("keeps tokens of two realms, or two services, of one origin apart", async () => {
    const h = harness();
    expect(await h.challenge("https://reg.test", undefined, challengeOf(REALM, "one"))).toBe("Bearer t1");
    expect(await h.challenge("https://reg.test", undefined, challengeOf(REALM, "two"))).toBe("Bearer t2");
    expect(await h.challenge("https://reg.test", undefined, challengeOf(REALM, null))).toBe("Bearer t3");
    expect(
      await h.challenge("https://reg.test", undefined, challengeOf("https://other.test/token", "one")),
    ).toBe("Bearer t4");
    expect(h.requests.map((r) => `${r.url.host} ${r.url.searchParams.get("service")}`)).toEqual([
      "auth.test one",
      "auth.test two",
      "auth.test null",
      "other.test one",
    ]);
    // The scheme last seen (other.test, "one") is what goes up front, with its own cached token.
    expect(await h.upFront("https://reg.test")).toBe("Bearer t4");
    expect(h.requests).toHaveLength(4);
  });

  it("keeps a login's token from another login and from anonymous callers", async () => {
    let login: Credential | undefined = { username: "u", password: "p1" };
    const requests: (string | null)[] = [];
    const auth = new Authenticator({
      credentials: () => login,
      now: () => 0,
      allowsPlainHttp: () => false,
      send: async (_, init) => {
        requests.push(new Headers(init.headers).get("authorization"));
        return Response.json({ token: `t${requests.length}` });
      },
    });
    const ask = () => auth.challenge("reg.test", "https://reg.test", challengeOf(), ["s"], undefined);
    expect(await ask()).toBe("Bearer t1");
    login = { username: "u", password: "p2" };
    expect(await ask()).toBe("Bearer t2");
    login = undefined;
    expect(await ask()).toBe("Bearer t3");
    login = { username: "u", password: "p1" };
    expect(await auth.authorization("reg.test", "https://reg.test", ["s"])).toBe("Bearer t1");
    expect(requests).toEqual([`Basic ${btoa("u:p1")}`, `Basic ${btoa("u:p2")}`, null]);
  });

  it("fetches a new token once the cached one is within the renewal margin of its expiry, not before", async () => {
    const h = harness({ expiresIn: 60 });
    const start = h.state.clock;
    expect(await h.challenge()).toBe("Bearer t1");
    // Renewed 5 s before it expires: good until start + 55 s, exclusive.
    h.state.clock = start + 55_000 - 1;
    expect(await h.upFront()).toBe("Bearer t1");
    h.state.clock = start + 55_000;
    expect(await h.upFront()).toBe("Bearer t2");
    expect(h.requests).toHaveLength(2);
  });

  it("never answers a challenge with the token the registry just refused: it fetches another", async () => {
    const h = harness();
    expect(await h.challenge()).toBe("Bearer t1");
    expect(await h.challenge(undefined, undefined, undefined, "Bearer t1")).toBe("Bearer t2");
    // A token other than the one refused is still good: no fetch.
    expect(await h.challenge(undefined, undefined, undefined, "Bearer t1")).toBe("Bearer t2");
    expect(h.requests).toHaveLength(2);
  });

  it("merges concurrent requests for one token into one fetch", async () => {
    const h = harness();
    expect(await Promise.all([h.challenge(), h.challenge(), h.challenge()])).toEqual([
      "Bearer t1",
      "Bearer t1",
      "Bearer t1",
    ]);
    expect(h.requests).toHaveLength(1);
  });

  it("merges concurrent renewals of an expired token into one fetch", async () => {
    const h = harness({ expiresIn: 60 });
    expect(await h.challenge()).toBe("Bearer t1");
    h.state.clock += 3_600_000;
    expect(await Promise.all([h.upFront(), h.upFront(), h.upFront()])).toEqual([
      "Bearer t2",
      "Bearer t2",
      "Bearer t2",
    ]);
    expect(h.requests).toHaveLength(2);
  });

  it("does not keep a failed token fetch: the next request fetches again", async () => {
    const h = harness({
      answer: (n) => (n === 1 ? new Response("", { status: 503 }) : Response.json({ token: `t${n}` })),
    });
    expect((await failure(h.challenge())).code).toBe("REGISTRY_ERROR");
    expect(await h.challenge()).toBe("Bearer t2");
    expect(h.requests).toHaveLength(2);
  });

  it("lets one caller stop waiting for a shared token fetch without failing the others", async () => {
    let release: (r: Response) => void = () => {};
    const h = harness({ answer: () => new Promise<Response>((resolve) => (release = resolve)) });
    const controller = new AbortController();
    const aborted = h.challenge(undefined, undefined, undefined, undefined, undefined, controller.signal);
    const patient = h.challenge();
    await new Promise((resolve) => setTimeout(resolve, 0));
    controller.abort();
    const error = await failure(aborted);
    expect(error.code).toBe("ABORTED");
    expect(error.message).toBe("Cannot get a registry token: it was aborted");
    release(Response.json({ token: "shared" }));
    expect(await patient).toBe("Bearer shared");
    expect(h.requests).toHaveLength(1);
  });
});

describe("token request", () => {
  it("asks for exactly the scopes needed up front, and for the challenge's scopes too, once each", async () => {
    const h = harness({ credentials: { "reg.test": { username: "u", password: "p" } } });
    await h.challenge(
      "https://reg.test",
      ["repository:ns/m:pull"],
      challengeOf(REALM, "svc", "repository:ns/m:pull repository:ns/m:push"),
    );
    h.state.clock += 3_600_000;
    await h.upFront("https://reg.test", ["repository:ns/m:pull"]);
    expect(h.requests.map((r) => r.url.searchParams.getAll("scope"))).toEqual([
      ["repository:ns/m:pull", "repository:ns/m:push"],
      ["repository:ns/m:pull"],
    ]);
    for (const { url, authorization } of h.requests) {
      expect(url.origin + url.pathname).toBe(REALM);
      expect(url.searchParams.get("service")).toBe("svc");
      expect(url.searchParams.get("account")).toBe("u");
      expect(authorization).toBe(`Basic ${btoa("u:p")}`);
    }
  });

  it("asks a redirect target's realm anonymously, under the target's origin", async () => {
    const h = harness({ credentials: { "reg.test": { username: "u", password: "p" } } });
    expect(await h.challenge("https://reg.test")).toBe("Bearer t1");
    const redirect = await h.auth.redirectChallenge(
      "reg.test",
      "https://reg.test",
      "https://cdn.test",
      challengeOf(),
      ["repository:ns/m:pull"],
      undefined,
    );
    expect(redirect).toBe("Bearer t2");
    expect(h.requests.map((r) => [r.authorization, r.url.searchParams.get("account")])).toEqual([
      [`Basic ${btoa("u:p")}`, "u"],
      [null, null],
    ]);
    // Each keeps its own: the registry's login token never goes to the target, nor the reverse.
    expect(await h.upFront("https://reg.test")).toBe("Bearer t1");
    expect(
      await h.auth.redirectAuthorization("reg.test", "https://reg.test", "https://cdn.test", [
        "repository:ns/m:pull",
      ]),
    ).toBe("Bearer t2");
    expect(h.requests).toHaveLength(2);
  });
});
