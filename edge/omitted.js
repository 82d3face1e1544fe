// Bundles for Cloudflare Workers (the "workerd" condition of package.json "imports") get this module in
// place of hash-wasm and @noble/hashes: Workers cannot compile WebAssembly at run time, and
// crypto.DigestStream hashes there natively. src/digest/hashers.ts says so when it meets this module.
export {};
