/** Credentials for one registry: a user name and password (or access token), or a bearer token to send as is. */
export type Credential = { username: string; password: string } | { token: string };

/**
 * Where credentials come from: a static map keyed by registry host (`docker.io`, `ghcr.io`,
 * `localhost:5000`), or a function asked per registry. Anonymous when it returns nothing.
 */
export type CredentialProvider =
  | Record<string, Credential>
  | ((registry: string) => Credential | undefined | Promise<Credential | undefined>);

export async function lookupCredential(
  provider: CredentialProvider | undefined,
  registry: string,
): Promise<Credential | undefined> {
  if (provider === undefined) return undefined;
  if (typeof provider === "function") return provider(registry);
  return Object.hasOwn(provider, registry) ? provider[registry] : undefined;
}

/** `Basic <base64(user:password)>`, UTF-8 safe. */
export function basicAuthorization(username: string, password: string): string {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** A credential with a user name and password (or access token) to log in with. */
export type Login = Extract<Credential, { username: string }>;

/** Per login object, the strings hashed, so a login changed in place is hashed again. */
const identities = new WeakMap<Login, { hashed: string; identity: Promise<string> }>();

/**
 * Whom a token is fetched for, to key cached tokens by: `anonymous`, or a SHA-256 of the user name
 * and password, so the key never holds the secret and two logins that differ in any part never
 * share a token.
 */
export function credentialIdentity(login: Login | undefined): Promise<string> {
  if (!login) return Promise.resolve("anonymous");
  const hashed = `${login.username}\0${login.password}`;
  const known = identities.get(login);
  if (known?.hashed === hashed) return known.identity;
  const identity = crypto.subtle.digest("SHA-256", new TextEncoder().encode(hashed)).then((hash) => {
    let hex = "";
    for (const b of new Uint8Array(hash)) hex += b.toString(16).padStart(2, "0");
    return `login:${hex}`;
  });
  identities.set(login, { hashed, identity });
  return identity;
}
