import { OciError, untilAborted } from "../errors.js";
import { type Challenge, parseChallenges } from "./challenge.js";
import {
  basicAuthorization,
  type CredentialProvider,
  credentialIdentity,
  type Login,
  lookupCredential,
} from "./credentials.js";
import { isPrivateHost } from "./hosts.js";
import { readCapped, responseError } from "./http.js";

/** Sends one request (redirects handled, idle timeout applied). */
export type Send = (url: URL, init: RequestInit) => Promise<Response>;

export interface AuthenticatorOptions {
  credentials?: CredentialProvider | undefined;
  send: Send;
  now: () => number;
  /** Whether plain http is acceptable for a token realm on this host. */
  allowsPlainHttp: (host: string) => boolean;
  /** Whether a URL is on the configured CORS proxy (a realm rewritten by it may be on loopback). */
  isProxied?: (url: URL) => boolean;
}

interface OriginScheme {
  scheme: "bearer" | "basic";
  realm?: string;
  service?: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Token responses larger than this are refused. */
const TOKEN_RESPONSE_LIMIT = 1024 * 1024;
const DEFAULT_TOKEN_SECONDS = 60;
/** Tokens are renewed this long before they expire, so a request never carries one that dies mid-flight. */
const EXPIRY_MARGIN_MS = 5_000;

/**
 * Answers registry auth challenges: Bearer (token from the challenge's realm, cached per registry
 * origin + login + realm + service + scope, concurrent fetches merged, renewed on expiry or
 * rejection) and Basic. Credentials go to the registry and to the realm it names, nowhere else: the
 * transport asks `authorization`/`challenge` only for requests to, and challenges from, the
 * registry's own origin. A redirect target on another origin (registry.k8s.io sends /v2/ requests to
 * regional pkg.dev hosts) gets `redirectChallenge`: an anonymous Bearer token and nothing more.
 */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #schemes = new Map<string, OriginScheme>();
  /** Bearer schemes of redirect targets, per registry origin and target origin. */
  readonly #redirectSchemes = new Map<string, OriginScheme>();
  /** Keys hold the login itself (see `credentialIdentity`): this map never leaves the instance. */
  readonly #tokens = new Map<string, Promise<CachedToken>>();

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
  }

  /**
   * The `Authorization` header to send up front to `origin` (the registry's own origin), from
   * challenges already seen there.
   */
  async authorization(
    registry: string,
    origin: string,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const credential = await lookupCredential(this.#options.credentials, registry);
    if (credential && "token" in credential) return `Bearer ${credential.token}`;
    const known = this.#schemes.get(origin);
    if (!known) return undefined;
    if (known.scheme === "basic") {
      return credential ? basicAuthorization(credential.username, credential.password) : undefined;
    }
    const token = await this.#token(registry, origin, credential, known, scopes, undefined, signal);
    return `Bearer ${token}`;
  }

  /**
   * Learns from a 401's `WWW-Authenticate` and returns the header to retry with, or undefined when
   * there is nothing better to send (no credentials for Basic, an unknown scheme). `origin` is the
   * registry's own origin, the one that sent the challenge.
   */
  async challenge(
    registry: string,
    origin: string,
    header: string,
    scopes: string[],
    rejected: string | undefined,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    const credential = await lookupCredential(this.#options.credentials, registry);
    if (credential && "token" in credential) return undefined; // the given token was refused
    if (bearer) {
      const scheme = this.#bearerScheme(bearer, new URL(origin).host);
      this.#schemes.set(origin, scheme);
      const challengeScopes = (bearer.params.scope ?? "").split(" ").filter(Boolean);
      const token = await this.#token(
        registry,
        origin,
        credential,
        scheme,
        scopes,
        rejected,
        signal,
        challengeScopes,
      );
      const next = `Bearer ${token}`;
      return next === rejected ? undefined : next;
    }
    if (basic) {
      this.#schemes.set(origin, { scheme: "basic" });
      if (!credential) return undefined;
      const next = basicAuthorization(credential.username, credential.password);
      return next === rejected ? undefined : next;
    }
    return undefined;
  }

  /**
   * The `Authorization` header to send up front to `target`, an origin other than the registry's
   * (`origin`) that the registry redirects to: an anonymous token once that target's Bearer
   * challenge was answered (`redirectChallenge`), else nothing.
   */
  async redirectAuthorization(
    registry: string,
    origin: string,
    target: string,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const known = this.#redirectSchemes.get(JSON.stringify([origin, target]));
    if (!known) return undefined;
    return `Bearer ${await this.#token(registry, target, undefined, known, scopes, undefined, signal)}`;
  }

  /**
   * Answers a 401 from `target`, an origin the registry at `origin` redirected to, the way Docker and
   * containerd do: anonymously. Only a Bearer challenge, with no login, static token or Basic (the
   * registry's credentials are for the registry and its realm alone); the token is cached under the
   * target's origin as anonymous. A realm on a private address is refused as for the registry's own
   * challenges. Undefined when there is nothing to send (Basic only, or the token was refused).
   */
  async redirectChallenge(
    registry: string,
    origin: string,
    target: string,
    header: string,
    scopes: string[],
    rejected: string | undefined,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const bearer = parseChallenges(header).find((c) => c.scheme === "bearer");
    if (!bearer) return undefined;
    const scheme = this.#bearerScheme(bearer, new URL(origin).host);
    this.#redirectSchemes.set(JSON.stringify([origin, target]), scheme);
    const challengeScopes = (bearer.params.scope ?? "").split(" ").filter(Boolean);
    const token = await this.#token(
      registry,
      target,
      undefined,
      scheme,
      scopes,
      rejected,
      signal,
      challengeScopes,
    );
    const next = `Bearer ${token}`;
    return next === rejected ? undefined : next;
  }

  #bearerScheme(challenge: Challenge, registryHost: string): OriginScheme {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new OciError(
        "REGISTRY_ERROR",
        "Cannot authenticate: the registry's Bearer challenge has no realm",
      );
    }
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new OciError("REGISTRY_ERROR", `Cannot authenticate: the token realm "${realm}" is not a URL`);
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.#options.allowsPlainHttp(url.host))) {
      throw new OciError(
        "REGISTRY_ERROR",
        `Cannot authenticate: the token realm "${realm}" is not https; credentials are never sent in the clear`,
      );
    }
    // A public registry naming a realm on a private address is an SSRF attempt: never follow it.
    if (isPrivateHost(url.host) && !isPrivateHost(registryHost) && !this.#options.isProxied?.(url)) {
      throw new OciError(
        "REGISTRY_ERROR",
        `Cannot authenticate: ${registryHost} names a token realm on the private address ${url.host}; refusing to request a token there`,
      );
    }
    const scheme: OriginScheme = { scheme: "bearer", realm };
    if (challenge.params.service !== undefined) scheme.service = challenge.params.service;
    return scheme;
  }

  /**
   * A token for `scopes`, cached per registry origin and login as well as realm, service and scopes:
   * two registries whose challenges name one realm and service (a shared auth server) never get
   * each other's tokens, nor an anonymous token one fetched with a login.
   */
  async #token(
    registry: string,
    origin: string,
    credential: Login | undefined,
    scheme: OriginScheme,
    scopes: string[],
    rejected: string | undefined,
    signal: AbortSignal | undefined,
    extraScopes: string[] = [],
  ): Promise<string> {
    // JSON of the parts, so no user name, password or realm can forge another key's separators.
    // No service (null) and an empty one ("") are two keys: they are two different token requests.
    const key = JSON.stringify([
      origin,
      credentialIdentity(credential),
      scheme.realm,
      scheme.service ?? null,
      [...scopes].sort(),
    ]);
    const cached = this.#tokens.get(key);
    if (cached) {
      const hit = await cached.catch(() => undefined);
      if (hit && hit.expiresAt > this.#options.now() && `Bearer ${hit.token}` !== rejected) return hit.token;
      // Another caller renewed it while we waited: share theirs.
      if (this.#tokens.get(key) !== cached)
        return this.#token(registry, origin, credential, scheme, scopes, rejected, signal, extraScopes);
    }
    // Set synchronously after the lookup, so concurrent callers merge onto this one fetch. A failed
    // fetch stays in the map (it is no token: the next lookup above replaces it) and counts as handled
    // here, since a caller whose signal already fired never awaits it.
    // The shared fetch carries no caller's signal (one caller's abort must not fail the others);
    // it is bounded by the transport's timeout, and each caller stops waiting on its own signal.
    const entry = this.#fetchToken(registry, credential, scheme, [...new Set([...scopes, ...extraScopes])]);
    this.#tokens.set(key, entry);
    entry.catch(() => {});
    return (await untilAborted(entry, signal, "get a registry token")).token;
  }

  async #fetchToken(
    registry: string,
    credential: Login | undefined,
    scheme: OriginScheme,
    scopes: string[],
  ): Promise<CachedToken> {
    const url = new URL(scheme.realm as string);
    if (scheme.service !== undefined) url.searchParams.set("service", scheme.service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers = new Headers();
    if (credential) {
      url.searchParams.set("account", credential.username);
      headers.set("authorization", basicAuthorization(credential.username, credential.password));
    }
    const action = `get a token from ${url.origin}${url.pathname}`;
    const response = await this.#options.send(url, { headers });
    if (response.status === 401) {
      await response.body?.cancel().catch(() => {});
      throw new OciError(
        "UNAUTHORIZED",
        `Cannot ${action}: the token server refused ${credential ? "the credentials" : "anonymous access"}; check the credentials for ${registry}`,
        { status: 401 },
      );
    }
    if (!response.ok) throw await responseError(response, action);
    const bytes = await readCapped(response, TOKEN_RESPONSE_LIMIT, "UNAUTHORIZED", action);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch (cause) {
      throw new OciError("UNAUTHORIZED", `Cannot ${action}: the token response is not JSON`, { cause });
    }
    const token = typeof body.token === "string" && body.token ? body.token : body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new OciError("UNAUTHORIZED", `Cannot ${action}: the token response holds no token`);
    }
    const seconds =
      typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const lifetime = seconds * 1000;
    const margin = Math.min(EXPIRY_MARGIN_MS, lifetime / 4);
    return { token, expiresAt: this.#options.now() + lifetime - margin };
  }
}
