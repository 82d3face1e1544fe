import type { CreateHasher } from "../digest/hasher.js";
import { parseReference, type Reference, registryApiHost } from "../reference.js";
import { isLoopbackHost } from "./hosts.js";
import { type RegistryRequest, Transport, type TransportOptions } from "./transport.js";

/** A repository: a parsed reference or a reference string (its tag or digest is ignored). */
export type RepositoryRef = Reference | string;

/** What every registry client request takes. */
export interface RequestOptions {
  /** Aborts the request (`ABORTED`, or `TIMEOUT` for `AbortSignal.timeout`). */
  signal?: AbortSignal;
}

export function toRepository(repository: RepositoryRef): Reference {
  return typeof repository === "string" ? parseReference(repository) : repository;
}

export function pullScope(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull`];
}

export function pushScope(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull,push`];
}

/**
 * What the manifest, blob, upload and tag parts of the client share: the transport (auth, retries,
 * timeouts, proxy), the hasher and where each registry's API lives.
 */
export class RegistryApi {
  readonly transport: Transport;
  readonly createHasher: CreateHasher;
  readonly #plainHttp: boolean | string[];

  constructor(
    transport: Omit<TransportOptions, "allowsPlainHttp" | "registryOrigin">,
    createHasher: CreateHasher,
    plainHttp: boolean | string[],
  ) {
    this.createHasher = createHasher;
    this.#plainHttp = plainHttp;
    this.transport = new Transport({
      ...transport,
      allowsPlainHttp: (host) => this.allowsPlainHttp(host),
      registryOrigin: (registry) => this.origin(registry),
    });
  }

  allowsPlainHttp(host: string): boolean {
    if (this.#plainHttp === true || isLoopbackHost(host)) return true;
    return Array.isArray(this.#plainHttp) && this.#plainHttp.includes(host);
  }

  /** A registry's API origin, `https://host[:port]` (http where plain http is allowed), normalised as `URL.origin`. */
  origin(registry: string): string {
    const host = registryApiHost(registry);
    return new URL(`${this.allowsPlainHttp(host) ? "http" : "https"}://${host}`).origin;
  }

  /** The base URL of a repository's API: `https://host/v2/<repository>`. */
  repositoryUrl(ref: Reference): string {
    return `${this.origin(ref.registry)}/v2/${ref.repository}`;
  }

  /** A request to `<repository URL><path>`, with pull scope unless told otherwise. */
  request(
    ref: Reference,
    path: string,
    request: Omit<RegistryRequest, "registry" | "scopes"> & { scopes?: string[] },
  ): Promise<Response> {
    return this.requestUrl(new URL(`${this.repositoryUrl(ref)}${path}`), ref, request);
  }

  /** A request to a URL the registry gave (an upload location, a next page), in `ref`'s repository. */
  requestUrl(
    url: URL,
    ref: Reference,
    request: Omit<RegistryRequest, "registry" | "scopes"> & { scopes?: string[] },
  ): Promise<Response> {
    return this.transport.request(url, {
      ...request,
      registry: ref.registry,
      scopes: request.scopes ?? pullScope(ref),
    });
  }
}
