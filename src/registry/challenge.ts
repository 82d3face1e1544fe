import { OciError } from "../errors.js";

/** One challenge of a `WWW-Authenticate` header (RFC 7235). */
export interface Challenge {
  /** The auth scheme, lowercased (`bearer`, `basic`). */
  scheme: string;
  /** Auth parameters, names lowercased (`realm`, `service`, `scope`). */
  params: Record<string, string>;
  /** The token68 form, for schemes that use it instead of parameters. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

function malformed(header: string, reason: string): OciError {
  return new OciError(
    "REGISTRY_ERROR",
    `Cannot authenticate: the registry sent a malformed WWW-Authenticate header (${reason}): ${header.slice(0, 200)}`,
  );
}

/**
 * Parses a `WWW-Authenticate` header into its challenges: quoted strings with commas and escaped
 * quotes inside, several challenges in one header, token68 values.
 *
 * @example
 * ```ts
 * parseChallenges('Bearer realm="https://auth.example/token",scope="repository:a:pull,push"');
 * // [{ scheme: "bearer", params: { realm: "https://auth.example/token", scope: "repository:a:pull,push" } }]
 * ```
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const n = header.length;
  let i = 0;
  let current: Challenge | undefined;

  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && TCHAR.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  const readQuoted = () => {
    i++; // opening quote
    let value = "";
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\") i++;
      if (i >= n) break;
      value += header[i];
      i++;
    }
    if (i >= n) throw malformed(header, "unterminated quoted string");
    i++; // closing quote
    return value;
  };
  const expectListEnd = () => {
    skipSpace();
    if (i < n && header[i] !== ",") throw malformed(header, `unexpected "${header[i]}" at ${i}`);
    i++;
  };

  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      continue;
    }
    if (i >= n) break;
    const token = readToken();
    if (token === "") throw malformed(header, `unexpected "${header[i]}" at ${i}`);
    skipSpace();
    if (header[i] === "=") {
      if (!current) throw malformed(header, "a parameter comes before any scheme");
      let j = i + 1;
      while (j < n && (header[j] === " " || header[j] === "\t")) j++;
      if (j >= n || header[j] === "," || header[j] === "=") {
        // token68: the token and its trailing "=" padding
        let pad = "";
        while (i < n && header[i] === "=") {
          pad += "=";
          i++;
        }
        current.token68 = token + pad;
        expectListEnd();
        continue;
      }
      i = j;
      const value = header[i] === '"' ? readQuoted() : readToken();
      current.params[token.toLowerCase()] = value;
      expectListEnd();
      continue;
    }
    current = { scheme: token.toLowerCase(), params: {} };
    challenges.push(current);
    // A bare token68 right after the scheme ("Negotiate abc")
    if (i < n && header[i] !== ",") {
      const save = i;
      const next = readToken();
      skipSpace();
      if (next !== "" && (i >= n || header[i] === ",")) {
        current.token68 = next;
        continue;
      }
      i = save;
    }
  }
  return challenges;
}
