import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { OciError, type PackFile } from "../index.js";
import { fileStream } from "./file-stream.js";

/**
 * A file on disk as a `PackFile` (read as often as packing needs, ranges included).
 *
 * @param path Where the file is on disk.
 * @param name Its path in the model (`/`-separated).
 * @param size Its size in bytes.
 * @returns A `PackFile` that opens the file for each read.
 */
export function packFileFromDisk(path: string, name: string, size: number): PackFile {
  return {
    path: name,
    size,
    stream: async (offset = 0, length = size - offset) => fileStream(path, offset, length),
  };
}

/**
 * One file on disk as a `PackFile` named by its base name (`--mmproj`, `--chat-template`, `--license`).
 *
 * @param path Where the file is.
 * @param what What it is for, for errors.
 * @returns The file, for `packModel`'s options.
 * @throws {OciError} `NOT_FOUND` when it is not there, `INVALID_ARGUMENT` when it is not a file.
 */
export async function packFileFromPath(path: string, what: string): Promise<PackFile> {
  const found = await stat(path).catch(() => undefined);
  if (!found) throw new OciError("NOT_FOUND", `Cannot pack ${path}: it does not exist (${what})`);
  if (!found.isFile())
    throw new OciError("INVALID_ARGUMENT", `Cannot pack ${path}: it is not a file (${what})`);
  return packFileFromDisk(path, basename(path), found.size);
}

/** llama.cpp's split GGUF names, as gguf-parser-go's ShardGGUFFilenameRegex matches them. */
const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/**
 * A GGUF file, as `docker model package --gguf` takes one: the file itself, or, for a part of a split
 * model (`<name>-00001-of-0000N.gguf`), every part of it found beside it. A missing part is left
 * out here and refused by `packModel`.
 *
 * @param path The GGUF file (any part of a split model).
 * @returns Its files, named by their base names.
 */
export async function packFilesFromGguf(path: string): Promise<PackFile[]> {
  const name = basename(path);
  const shard = SHARD.exec(name);
  if (!shard) return [await packFileFromPath(path, "the GGUF model to pack")];
  const [, prefix, , total] = shard;
  const out: PackFile[] = [];
  for (let i = 1; i <= Number(total); i++) {
    const part = `${prefix}-${String(i).padStart(5, "0")}-of-${total}.gguf`;
    const full = join(dirname(path), part);
    const found = await stat(full).catch(() => undefined);
    if (found?.isFile()) out.push(packFileFromDisk(full, part, found.size));
  }
  return out;
}

/**
 * Every regular file below `dir` (hidden files and folders left out), as `PackFile`s with `/` paths.
 *
 * @param dir The model folder.
 * @returns Its files, for `packModel`.
 */
export async function packFilesFromDirectory(dir: string): Promise<PackFile[]> {
  const out: PackFile[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    const name = relative(dir, full).split(sep).join("/");
    if (name.split("/").some((part) => part.startsWith("."))) continue;
    out.push(packFileFromDisk(full, name, (await stat(full)).size));
  }
  return out;
}
