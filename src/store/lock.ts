/** The part of the Web Locks API we use (`navigator.locks`). */
interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
  query?(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>;
}

const local = new Map<string, Promise<unknown>>();

function webLocks(): LockManagerLike | undefined {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  return typeof locks?.request === "function" ? locks : undefined;
}

/**
 * Runs `fn` holding the lock `name`: across tabs and workers with Web Locks where they exist,
 * and always across calls in this realm.
 */
export function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const previous = local.get(name) ?? Promise.resolve();
  const locks = webLocks();
  const run = previous.then(
    () => (locks ? locks.request(name, fn) : fn()),
    () => (locks ? locks.request(name, fn) : fn()),
  );
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  local.set(name, settled);
  void settled.then(() => {
    if (local.get(name) === settled) local.delete(name);
  });
  return run;
}

/**
 * Whether anyone holds or waits for the lock `name`: this realm, or with Web Locks any tab or
 * worker of the origin.
 */
export async function isLocked(name: string): Promise<boolean> {
  if (local.has(name)) return true;
  const state = await webLocks()?.query?.();
  return [...(state?.held ?? []), ...(state?.pending ?? [])].some((lock) => lock.name === name);
}
