/**
 * POSIX path helpers with the results of `node:path`'s posix functions, for
 * the modules every store command loads: importing `node:path` pulls in
 * Deno's Node compatibility layer, which costs a small command more start-up
 * time than the command's own work.
 *
 * @example
 * ```ts
 * import { dirname, join, resolve } from "./path.ts";
 * join("/var/lib", "../tmp", "x/"); // "/var/tmp/x/"
 * dirname("/a/b/c"); // "/a/b"
 * resolve("a", "b"); // Deno.cwd() + "/a/b"
 * ```
 * @module
 */

/** The "."/".."-free form of `p` without its root or trailing slash; ".." stays only where it leads a relative path. */
function parts(p: string, absolute: boolean): string {
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") out.push(part);
    else if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (!absolute) out.push("..");
  }
  return out.join("/");
}

/** Lexically cleans `p` ("a//b/../c/" becomes "a/c/"), keeping a trailing slash; "" becomes ".". */
export function normalize(p: string): string {
  if (p === "") return ".";
  const absolute = p.startsWith("/");
  const trailing = p.endsWith("/");
  let out = parts(p, absolute);
  if (out === "" && !absolute) out = ".";
  if (out !== "" && trailing) out += "/";
  return absolute ? `/${out}` : out;
}

/** Joins the non-empty `paths` with "/" and normalizes the result ("." when all are empty). */
export function join(...paths: string[]): string {
  const joined = paths.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

/** The absolute, normalized path that `paths` lead to from the current directory; no trailing slash. */
export function resolve(...paths: string[]): string {
  let path = "";
  for (let i = paths.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    if (paths[i] !== "") path = path === "" ? paths[i] : `${paths[i]}/${path}`;
  }
  if (!path.startsWith("/")) path = path === "" ? Deno.cwd() : `${Deno.cwd()}/${path}`;
  return `/${parts(path, true)}`;
}

/** `p` without its last element and the slash before it: "/a/b/" gives "/a", "a" gives ".". */
export function dirname(p: string): string {
  if (p === "") return ".";
  let end = p.length;
  while (end > 1 && p[end - 1] === "/") end--;
  const slash = p.lastIndexOf("/", end - 1);
  if (slash === -1) return ".";
  if (slash === 0) return "/";
  // Slashes before the removed one stay, as node:path keeps them.
  return slash === 1 && p.startsWith("//") ? "//" : p.slice(0, slash);
}

/** The last element of `p`, trailing slashes ignored: "/a/b/" gives "b". */
export function basename(p: string): string {
  let end = p.length;
  while (end > 0 && p[end - 1] === "/") end--;
  return p.slice(p.lastIndexOf("/", end - 1) + 1, end);
}

/** The path from `from` to `to`, both resolved first; "" when they are the same. */
export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter((s) => s !== "");
  const b = resolve(to).split("/").filter((s) => s !== "");
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return [...Array(a.length - common).fill(".."), ...b.slice(common)].join("/");
}
