import { OciError } from "./errors.js";

/** A parsed image/model reference: `[registry/]repository[:tag][@digest]`. */
export interface Reference {
  /** Canonical registry host (`docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/alpine`, `ai/smollm2`). */
  readonly repository: string;
  /** The tag; `"latest"` only when neither a tag nor a digest was given. */
  readonly tag: string | undefined;
  /** The digest (`sha256:…`); when both tag and digest are given, the digest wins when fetching. */
  readonly digest: string | undefined;
  /** The canonical form, `registry/repository[:tag][@digest]`. */
  toString(): string;
}

export const DOCKER_HUB = "docker.io";
/** Ollama's registry and default namespace (ollama/ollama types/model/name.go: `defaultHost`, `defaultNamespace`). */
export const OLLAMA_REGISTRY = "registry.ollama.ai";
const OLLAMA_NAMESPACE = "library";
/** The prefix that reads the rest of a reference as an Ollama model name. */
export const OLLAMA_PREFIX = "ollama:";
const DOCKER_HUB_API = "registry-1.docker.io";
const NAME_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/i;
/**
 * Registries whose repository names keep their case: Hugging Face's (`hf.co`, `huggingface.co`), whose
 * repository ids are mixed-case and which Ollama names as written (`hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF`,
 * huggingface/hub-docs docs/hub/ollama.md; ollama/ollama types/model/name.go allows `A-Z` in every part).
 */
const MIXED_CASE_REGISTRIES = new Set(["hf.co", "huggingface.co"]);
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]{1,5}$/;
const KNOWN_DIGEST_LENGTHS: Record<string, number> = { sha256: 64, sha512: 128 };

function invalid(input: string, reason: string): OciError {
  return new OciError("INVALID_REFERENCE", `Cannot parse reference "${input}": ${reason}`);
}

/** Checks `algorithm:hex`; returns a reason when it is not a valid digest. */
export function digestProblem(digest: string): string | undefined {
  if (!DIGEST.test(digest))
    return `"${digest}" is not a digest of the form algorithm:hex (at least 32 hex digits)`;
  const [algorithm = "", hex = ""] = digest.split(":");
  const expected = KNOWN_DIGEST_LENGTHS[algorithm];
  if (expected !== undefined && (hex.length !== expected || hex !== hex.toLowerCase())) {
    return `a ${algorithm} digest has exactly ${expected} lowercase hex digits`;
  }
  return undefined;
}

function isDomain(component: string): boolean {
  return (
    component.includes(".") ||
    component.includes(":") ||
    component === "localhost" ||
    component !== component.toLowerCase()
  );
}

function domainProblem(domain: string): string | undefined {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith("[")) {
    const close = domain.indexOf("]");
    host = domain.slice(0, close + 1);
    const rest = domain.slice(close + 1);
    if (close < 0 || !IPV6.test(host)) return `registry "${domain}" is not a valid IPv6 literal`;
    if (rest !== "") {
      if (!rest.startsWith(":")) return `registry "${domain}" has text after the IPv6 literal`;
      port = rest.slice(1);
    }
  } else {
    const colon = domain.lastIndexOf(":");
    if (colon >= 0) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    if (!host.split(".").every((c) => DOMAIN_COMPONENT.test(c)))
      return `registry "${domain}" is not a valid host name`;
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) {
    return `registry "${domain}" has an invalid port`;
  }
  return undefined;
}

/**
 * Parses a reference following the distribution/reference grammar, with Docker Hub normalisation.
 * With the `ollama:` prefix the rest is an Ollama model name, normalised as Ollama does: a bare name
 * is in `registry.ollama.ai/library/` (`ollama:llama3.2:1b` → `registry.ollama.ai/library/llama3.2:1b`),
 * `user/model` in `registry.ollama.ai/user/model`, and a name with a host (`ollama:hf.co/user/repo:Q4_K_M`)
 * stays on that host. Without the prefix nothing changes: a bare name is Docker Hub's.
 *
 * @throws {OciError} `INVALID_REFERENCE`, saying what is wrong.
 * @param input `[registry/]repository[:tag][@digest]`.
 * @returns The reference, normalised (`docker.io`, `library/`, tag `latest` when neither tag nor digest is given).
 *
 * @example
 * ```ts
 * const ref = parseReference("ai/smollm2:360M");
 * ref.registry;   // "docker.io"
 * ref.repository; // "ai/smollm2"
 * ref.tag;        // "360M"
 * ```
 */
export function parseReference(input: string): Reference {
  if (typeof input !== "string" || input === "") throw invalid(String(input), "it is empty");
  if (/\s/.test(input)) throw invalid(input, "it contains whitespace");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    throw invalid(input, "leave out the URL scheme; write registry/repository[:tag]");
  }
  if (input.startsWith(OLLAMA_PREFIX)) return parseOllamaName(input);

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const problem = digestProblem(digest);
    if (problem) throw invalid(input, problem);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const tagColon = rest.indexOf(":", lastSlash + 1);
  if (tagColon >= 0) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG.test(tag)) {
      throw invalid(
        input,
        `tag "${tag}" must be 1-128 characters of [A-Za-z0-9_.-], not starting with . or -`,
      );
    }
  }
  if (rest === "") throw invalid(input, "the repository name is missing");
  if (rest.length > NAME_MAX) throw invalid(input, `the name is longer than ${NAME_MAX} characters`);

  let registry = DOCKER_HUB;
  let repository = rest;
  const firstSlash = rest.indexOf("/");
  if (firstSlash >= 0 && isDomain(rest.slice(0, firstSlash))) {
    registry = rest.slice(0, firstSlash);
    repository = rest.slice(firstSlash + 1);
    const problem = domainProblem(registry);
    if (problem) throw invalid(input, problem);
    if (registry === "index.docker.io") registry = DOCKER_HUB;
  }
  if (repository === "") throw invalid(input, "the repository name is missing");
  for (const component of repository.split("/")) {
    if (component === "") throw invalid(input, "the repository name has an empty path component");
    if (component !== component.toLowerCase() && !MIXED_CASE_REGISTRIES.has(registry.toLowerCase()))
      throw invalid(input, "repository names must be lowercase");
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        input,
        `path component "${component}" must be lowercase letters and digits, separated by ".", "_", "__" or "-"`,
      );
    }
  }
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  if (tag === undefined && digest === undefined) tag = "latest";
  return makeReference(registry, repository, tag, digest);
}

/** `ollama:name` → the reference Ollama pulls for `name` (see `parseReference`). */
function parseOllamaName(input: string): Reference {
  const name = input.slice(OLLAMA_PREFIX.length);
  if (name === "") throw invalid(input, "the Ollama model name after ollama: is missing");
  const slash = name.indexOf("/");
  const qualified =
    slash >= 0 && isDomain(name.slice(0, slash))
      ? name
      : `${OLLAMA_REGISTRY}/${slash >= 0 ? "" : `${OLLAMA_NAMESPACE}/`}${name}`;
  try {
    return parseReference(qualified);
  } catch (error) {
    if (error instanceof OciError && error.code === "INVALID_REFERENCE") {
      throw new OciError("INVALID_REFERENCE", error.message.replace(`"${qualified}"`, `"${input}"`));
    }
    throw error;
  }
}

function makeReference(registry: string, repository: string, tag?: string, digest?: string): Reference {
  const text = `${registry}/${repository}${tag === undefined ? "" : `:${tag}`}${digest === undefined ? "" : `@${digest}`}`;
  return Object.freeze({ registry, repository, tag, digest, toString: () => text });
}

/** A copy of `ref` pointing at `digest` (keeping its tag, for display). */
export function withDigest(ref: Reference, digest: string): Reference {
  return makeReference(ref.registry, ref.repository, ref.tag, digest);
}

/** What to ask the registry for: the digest when there is one, else the tag. */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** The host that serves the registry API for a canonical registry name (`docker.io` → `registry-1.docker.io`). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}
