/**
 * The tar files of image archives (oci-archive, docker-archive) to and
 * from a directory: extracting one into a temporary directory, confined to
 * it (regular files, directories, symbolic links that stay inside), and
 * writing a directory's files as a tar, streamed to a temporary file that
 * replaces the target only when complete.
 *
 * @example
 * ```ts ignore
 * const dir = await extractArchive("/tmp/image.tar");
 * await writeArchive(dir, "/tmp/copy.tar");
 * ```
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { emptyHeader, type TarHeader } from "../archive/tar_header.ts";
import { readTar } from "../archive/tar_reader.ts";
import { type TarWriteEntry, writeTar } from "../archive/tar_writer.ts";
import { ErrInvalidImage } from "./errors.ts";

/** The name of an entry inside `root`, or undefined when it would leave it. */
function confined(root: string, name: string): string | undefined {
  const path = resolve(root, name.replace(/^\/+/, ""));
  return path === root || path.startsWith(root + "/") ? path : undefined;
}

/**
 * Extracts the archive `file` into a new temporary directory (removed
 * again on failure) and returns it.
 * @throws {ErrInvalidImage} naming the file for an unreadable, truncated or
 * unsafe archive.
 */
export async function extractArchive(file: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "image-archive-" });
  try {
    let input: Deno.FsFile;
    try {
      input = await Deno.open(file);
    } catch (e) {
      throw new ErrInvalidImage(file, { detail: "cannot open the archive", cause: e });
    }
    try {
      for await (const entry of readTar(input.readable)) {
        const h = entry.header;
        const path = confined(root, h.name);
        if (!path) {
          throw new ErrInvalidImage(file, { detail: `entry ${h.name} leaves the archive` });
        }
        if (h.typeflag === "5") {
          await Deno.mkdir(path, { recursive: true });
        } else if (h.typeflag === "0" || h.typeflag === "\0") {
          await Deno.mkdir(dirname(path), { recursive: true });
          const out = await Deno.open(path, { write: true, create: true, truncate: true });
          await ReadableStream.from(entry.body).pipeTo(out.writable);
        } else if (h.typeflag === "2") {
          if (!confined(root, join(dirname(relative(root, path)), h.linkname))) {
            throw new ErrInvalidImage(file, { detail: `symlink ${h.name} points outside` });
          }
          await Deno.mkdir(dirname(path), { recursive: true });
          await Deno.symlink(h.linkname, path);
        } else if (h.typeflag !== "x" && h.typeflag !== "g") {
          throw new ErrInvalidImage(file, {
            detail: `entry ${h.name} has unsupported type ${JSON.stringify(h.typeflag)}`,
          });
        }
      }
    } catch (e) {
      if (e instanceof ErrInvalidImage) throw e;
      throw new ErrInvalidImage(file, {
        detail: `cannot read the archive: ${(e as Error).message}`,
        cause: e,
      });
    }
    return root;
  } catch (e) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw e;
  }
}

function header(name: string, typeflag: string, mode: number, size: number): TarHeader {
  return { ...emptyHeader(name, typeflag), mode, size };
}

/** The entries of `dir`, sorted, directories before what they hold. */
async function* entries(dir: string, prefix = ""): AsyncGenerator<TarWriteEntry> {
  const names: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) names.push(e);
  names.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const e of names) {
    const name = prefix + e.name;
    if (e.isDirectory) {
      yield { header: header(name + "/", "5", 0o755, 0) };
      yield* entries(dir, name + "/");
    } else if (e.isFile) {
      const file = await Deno.open(join(dir, name));
      const { size } = await file.stat();
      yield { header: header(name, "0", 0o644, size), body: file.readable };
    }
  }
}

/** Writes the files of `dir` as a tar to `file`, replacing it only once complete. */
export async function writeArchive(dir: string, file: string): Promise<void> {
  const tmp = join(dirname(resolve(file)), `.${crypto.randomUUID()}.tmp`);
  try {
    const out = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    await writeTar(entries(dir)).pipeTo(out.writable);
    await Deno.rename(tmp, file);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
