import { describe, expect, it } from "vitest";
import { OciError, parseReference } from "../../src/index.js";
import { registryApiHost } from "../../src/internals.js";

const D = `sha256:${"a1".repeat(32)}`;
const D512 = `sha512:${"0f".repeat(64)}`;

type Valid = [input: string, registry: string, repository: string, tag: string | undefined, digest?: string];

const valid: Valid[] = [
  ["ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["ubuntu:22.04", "docker.io", "library/ubuntu", "22.04"],
  ["library/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["index.docker.io/ai/smollm2", "docker.io", "ai/smollm2", "latest"],
  ["ai/smollm2:360M", "docker.io", "ai/smollm2", "360M"],
  ["docker.io/ai/smollm2:360M-Q4_K_M", "docker.io", "ai/smollm2", "360M-Q4_K_M"],
  ["localhost/ns/m", "localhost", "ns/m", "latest"],
  ["localhost/m", "localhost", "m", "latest"],
  ["localhost:5000/m", "localhost:5000", "m", "latest"],
  ["localhost:5000/m:v1", "localhost:5000", "m", "v1"],
  ["127.0.0.1:5000/a/b:c", "127.0.0.1:5000", "a/b", "c"],
  ["[::1]:5000/m:t", "[::1]:5000", "m", "t"],
  ["[2001:db8::1]/m", "[2001:db8::1]", "m", "latest"],
  ["ghcr.io/acme/model:v1", "ghcr.io", "acme/model", "v1"],
  [`ghcr.io/acme/model@${D}`, "ghcr.io", "acme/model", undefined, D],
  [`ghcr.io/acme/model:v1@${D}`, "ghcr.io", "acme/model", "v1", D],
  [`m@${D512}`, "docker.io", "library/m", undefined, D512],
  ["registry.example.com/a/b/c/d:tag", "registry.example.com", "a/b/c/d", "tag"],
  ["example.com:443/x", "example.com:443", "x", "latest"],
  ["foo:5000/bar", "foo:5000", "bar", "latest"],
  ["Registry/bar", "Registry", "bar", "latest"],
  ["a.b-c/x__y/z--w", "a.b-c", "x__y/z--w", "latest"],
  ["x/a.b_c-d", "docker.io", "x/a.b_c-d", "latest"],
  ["m:_underscore", "docker.io", "library/m", "_underscore"],
  ["m:V1.0-rc_1", "docker.io", "library/m", "V1.0-rc_1"],
  [`m:${"t".repeat(128)}`, "docker.io", "library/m", "t".repeat(128)],
  ["localhost:5000", "docker.io", "library/localhost", "5000"],
  [
    `m@multihash+base58:${"ab".repeat(16)}`,
    "docker.io",
    "library/m",
    undefined,
    `multihash+base58:${"ab".repeat(16)}`,
  ],
];

const invalid: [input: string, reason: RegExp][] = [
  ["", /empty/],
  ["UPPER", /lowercase/],
  ["docker.io/Upper", /lowercase/],
  ["ghcr.io/Acme/model", /lowercase/],
  ["a//b", /empty path component/],
  ["/a", /empty path component|missing/],
  ["a/", /empty path component/],
  ["m:", /tag ""/],
  ["m:-bad", /tag "-bad"/],
  ["m:.bad", /tag ".bad"/],
  [`m:${"t".repeat(129)}`, /1-128 characters/],
  ["m@sha256:short", /not a digest/],
  [`m@sha256:${"A1".repeat(32)}`, /lowercase hex/],
  [`m@sha256:${"a1".repeat(33)}`, /exactly 64/],
  ["m@:abc", /not a digest/],
  ["https://ghcr.io/a", /URL scheme/],
  ["a b", /whitespace/],
  ["a__-b", /path component/],
  ["a..b", /path component/],
  ["-a", /path component/],
  ["a-", /path component/],
  [`ghcr.io/${"a".repeat(250)}`, /longer than 255/],
  ["[::1/m", /IPv6/],
  ["host:99999/m", /invalid port/],
  ["-host.com/a", /not a valid host/],
  [`a@${D}@${D}`, /not a digest/],
  ["a:b:c", /tag "b:c"/],
  [":tag", /missing/],
  [`@${D}`, /missing/],
  ["ghcr.io/", /missing/],
];

describe("parseReference", () => {
  it.each(valid)("parses %s", (input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect({ registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }).toEqual({
      registry,
      repository,
      tag,
      digest,
    });
    expect(parseReference(ref.toString()).toString()).toBe(ref.toString());
  });

  it.each(invalid)("refuses %j with INVALID_REFERENCE", (input, reason) => {
    let error: unknown;
    try {
      parseReference(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe("INVALID_REFERENCE");
    expect((error as OciError).message).toMatch(/^Cannot parse reference/);
    expect((error as OciError).message).toMatch(reason);
  });

  it("writes the canonical form", () => {
    expect(parseReference("ubuntu").toString()).toBe("docker.io/library/ubuntu:latest");
    expect(parseReference(`ghcr.io/a/b:v1@${D}`).toString()).toBe(`ghcr.io/a/b:v1@${D}`);
  });

  it("maps Docker Hub to its API host and leaves others alone", () => {
    expect(registryApiHost("docker.io")).toBe("registry-1.docker.io");
    expect(registryApiHost("ghcr.io")).toBe("ghcr.io");
  });
});

describe("parseReference: the ollama: prefix (Ollama model names)", () => {
  it.each([
    ["ollama:llama3.2:1b", "registry.ollama.ai", "library/llama3.2", "1b", undefined],
    ["ollama:llama3.2", "registry.ollama.ai", "library/llama3.2", "latest", undefined],
    ["ollama:user/model", "registry.ollama.ai", "user/model", "latest", undefined],
    ["ollama:user/model:q4", "registry.ollama.ai", "user/model", "q4", undefined],
    ["ollama:hf.co/bartowski/smollm2-gguf:Q4_K_M", "hf.co", "bartowski/smollm2-gguf", "Q4_K_M", undefined],
    ["ollama:localhost:5000/m:1", "localhost:5000", "m", "1", undefined],
    [`ollama:qwen3@${D}`, "registry.ollama.ai", "library/qwen3", undefined, D],
  ])("reads %s as Ollama does", (input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect({ registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }).toEqual({
      registry,
      repository,
      tag,
      digest,
    });
  });

  it("keeps the case of Hugging Face repository names, with or without the prefix, and only there", () => {
    const names = [
      "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
      "ollama:hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
      "huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
    ];
    for (const name of names) {
      const ref = parseReference(name);
      expect(ref.repository).toBe("bartowski/Llama-3.2-1B-Instruct-GGUF");
      expect(parseReference(ref.toString()).toString()).toBe(ref.toString());
    }
    expect(() => parseReference("ghcr.io/a/Model")).toThrow(/repository names must be lowercase/);
    expect(() => parseReference("hf.co/a/Bad--Name_")).toThrow(/path component "Bad--Name_"/);
  });

  it("leaves a name without the prefix on Docker Hub", () => {
    expect(parseReference("llama3.2:1b").toString()).toBe("docker.io/library/llama3.2:1b");
    expect(parseReference("user/model").registry).toBe("docker.io");
  });

  it.each([
    ["ollama:", /the Ollama model name after ollama: is missing/],
    ["ollama:Llama3", /^Cannot parse reference "ollama:Llama3": repository names must be lowercase/],
    ["ollama:a:b:c", /^Cannot parse reference "ollama:a:b:c": tag "b:c"/],
  ])("refuses %j with INVALID_REFERENCE, naming the input", (input, reason) => {
    expect(() => parseReference(input)).toThrow(
      expect.objectContaining({ code: "INVALID_REFERENCE", message: expect.stringMatching(reason) }),
    );
  });
});
