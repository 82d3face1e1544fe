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

/**
 * Whom a token is fetched for, to key cached tokens by: `anonymous`, or the login itself, so two
 * logins that differ in any part never share a token, and a login changed in place gets its own.
 * Synchronous and hash-free on purpose: `crypto.subtle` exists only in secure contexts (a page served
 * over http://192.168.x.x has none), and hashing would hide nothing, since the password is in memory
 * anyway. The result holds the secret: keep it in a private map, never in a log or an error message.
 */
export function credentialIdentity(login: Login | undefined): string {
  return login ? `login:${login.username}\0${login.password}` : "anonymous";
}
