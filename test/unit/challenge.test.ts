import { describe, expect, it } from "vitest";
import { OciError } from "../../src/index.js";
import { parseChallenges } from "../../src/internals.js";

describe("parseChallenges (RFC 7235)", () => {
  it("reads a Docker Hub style Bearer challenge", () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/alpine:pull",
        },
      },
    ]);
  });

  it("keeps commas and escaped quotes inside quoted strings", () => {
    const [c] = parseChallenges(
      'Bearer realm="https://a/t",scope="repository:x:pull,push",error="say \\"hi\\", ok"',
    );
    expect(c?.params.scope).toBe("repository:x:pull,push");
    expect(c?.params.error).toBe('say "hi", ok');
  });

  it("reads several challenges in one header, with spaces and token values", () => {
    expect(
      parseChallenges('Basic realm="Registry Realm" , Bearer realm="https://a/t", service = reg , Newauth'),
    ).toEqual([
      { scheme: "basic", params: { realm: "Registry Realm" } },
      { scheme: "bearer", params: { realm: "https://a/t", service: "reg" } },
      { scheme: "newauth", params: {} },
    ]);
  });

  it("lowercases scheme and parameter names, not values", () => {
    expect(parseChallenges('BEARER Realm="https://A/T"')).toEqual([
      { scheme: "bearer", params: { realm: "https://A/T" } },
    ]);
  });

  it("reads token68 values", () => {
    expect(parseChallenges("Negotiate abc==, Basic realm=x")).toEqual([
      { scheme: "negotiate", params: {}, token68: "abc==" },
      { scheme: "basic", params: { realm: "x" } },
    ]);
  });

  it.each([
    ['Bearer realm="unterminated', /unterminated/],
    ['realm="x"', /before any scheme/],
    ["Bearer realm=x y=z", /unexpected/],
    ['Bearer realm="x" junk', /unexpected/],
  ])("refuses malformed %j with a stable code", (header, reason) => {
    let error: unknown;
    try {
      parseChallenges(header);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe("REGISTRY_ERROR");
    expect((error as OciError).message).toMatch(reason);
  });
});
