/**
 * ID-mapped bind mounts (Linux ≥ 5.12): a view of a directory in which
 * every file's owner is translated through a user namespace's UID/GID maps,
 * without touching the files. Built from the new mount API — open_tree(2)
 * clones the source tree into a detached mount, mount_setattr(2) with
 * `MOUNT_ATTR_IDMAP` attaches the user namespace, move_mount(2) puts it at
 * the target.
 *
 * A user namespace carrying the maps is needed as an fd. Deno cannot fork,
 * and unshare(CLONE_NEWUSER) refuses multithreaded callers, so
 * {@linkcode UserNamespace.create} runs `unshare --user -- cat` (util-linux):
 * once `cat` echoes a byte back, it runs inside the new namespace; we write
 * its uid_map/gid_map (as root in the parent namespace, which the kernel
 * allows in a single write each), open `/proc/<pid>/ns/user`, and let `cat`
 * exit on end of input. The open fd keeps the namespace alive, so no
 * helper process outlives the call, and a crash of ours ends it too (its
 * stdin closes). Consequence for permissions: besides `--allow-ffi`, the
 * caller needs `--allow-run=unshare` (or -A); without it
 * {@linkcode ErrPermission} names the flag.
 *
 * @example
 * ```ts ignore
 * import { idMappedMount } from "./idmap_mount.ts";
 * const map = [{ container_id: 0, host_id: 100000, size: 65536 }];
 * await idMappedMount("/srv/layer", "/mnt/mapped", { uidMap: map, gidMap: map });
 * // files owned by 0:0 under /srv/layer show as 100000:100000 under /mnt/mapped
 * ```
 * @module
 */

import { ErrPermission } from "../lib/errors.ts";
import type { IDMap, IDMappings } from "../lib/idmap.ts";
import { AT_FDCWD, check, cstr, libc, O_CLOEXEC, O_RDONLY, O_WRONLY } from "./libc.ts";

/** open_tree(2): the same number on every architecture (new syscalls share one table). */
export const SYS_OPEN_TREE = 428;
/** move_mount(2). */
export const SYS_MOVE_MOUNT = 429;
/** mount_setattr(2). */
export const SYS_MOUNT_SETATTR = 442;

/** open_tree: make a detached copy of the mount instead of referencing it. */
export const OPEN_TREE_CLONE = 0x1;
/** open_tree / mount_setattr: include every mount below the path. */
export const AT_RECURSIVE = 0x8000;
/** Operate on the fd itself (an empty path). */
export const AT_EMPTY_PATH = 0x1000;
/** move_mount: the source is the fd itself. */
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
/** mount_setattr: translate owners through the user namespace in `userns_fd`. */
export const MOUNT_ATTR_IDMAP = 0x100000;

function addr(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

function sys(nr: number, ...args: bigint[]): bigint {
  const a = [...args, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6);
  return libc().syscall(BigInt(nr), a[0], a[1], a[2], a[3], a[4], a[5]) as bigint;
}

/** open_tree(AT_FDCWD, path, flags): an fd for (a clone of) the mount tree at `path`. */
export function openTree(path: string, flags: number): number {
  const p = cstr(path);
  return check(sys(SYS_OPEN_TREE, BigInt(AT_FDCWD), addr(p), BigInt(flags)), "open_tree", path);
}

/**
 * mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, {attr_set}) with
 * `MOUNT_ATTR_IDMAP` and the user namespace `usernsFd`.
 */
export function setIDMap(treeFd: number, usernsFd: number, path: string): void {
  const empty = cstr("");
  // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
  const attr = new Uint8Array(32);
  const view = new DataView(attr.buffer);
  view.setBigUint64(0, BigInt(MOUNT_ATTR_IDMAP), true);
  view.setBigUint64(24, BigInt(usernsFd), true);
  check(
    sys(
      SYS_MOUNT_SETATTR,
      BigInt(treeFd),
      addr(empty),
      BigInt(AT_EMPTY_PATH | AT_RECURSIVE),
      addr(attr),
      BigInt(attr.length),
    ),
    "mount_setattr",
    path,
  );
}

/** move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH): attaches a detached tree. */
export function moveMount(treeFd: number, target: string): void {
  const empty = cstr("");
  const t = cstr(target);
  check(
    sys(
      SYS_MOVE_MOUNT,
      BigInt(treeFd),
      addr(empty),
      BigInt(AT_FDCWD),
      addr(t),
      BigInt(MOVE_MOUNT_F_EMPTY_PATH),
    ),
    "move_mount",
    target,
  );
}

/** Renders a mapping the way /proc/<pid>/uid_map takes it: one "inside outside count" line each. */
function procMapText(map: IDMap[]): string {
  return map.map((m) => `${m.container_id} ${m.host_id} ${m.size}\n`).join("");
}

/** Writes `text` to a /proc file in one write(2), as uid_map/gid_map require. */
function writeProcFile(path: string, text: string): void {
  const fd = check(libc().open(cstr(path), O_WRONLY | O_CLOEXEC, 0), "open", path);
  try {
    const bytes = new TextEncoder().encode(text);
    check(libc().write(fd, bytes, BigInt(bytes.length)), "write", path);
  } finally {
    libc().close(fd);
  }
}

/** A user namespace held open by an fd; close it when no more mounts need it. */
export class UserNamespace {
  private constructor(
    /** fd of `/proc/<pid>/ns/user` of the (exited) helper. */
    readonly fd: number,
  ) {}

  /**
   * Creates a user namespace whose UID and GID maps are `uidMap` and
   * `gidMap` (container → host ranges). Needs root (CAP_SETUID/CAP_SETGID in
   * our namespace) and `--allow-run=unshare`.
   * @throws {ErrPermission} without --allow-run; Deno.errors.NotFound without
   * `unshare`; `SyscallError` when the maps are refused; Error when `unshare` fails.
   */
  static async create(uidMap: IDMap[], gidMap: IDMap[]): Promise<UserNamespace> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("unshare", {
        args: ["--user", "--", "cat"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new ErrPermission("run", {
          detail:
            "run with --allow-run=unshare (or -A) to create user namespaces for ID-mapped mounts",
          cause: e,
        });
      }
      if (e instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(
          "creating a user namespace: unshare (util-linux) is not installed",
          { cause: e },
        );
      }
      throw e;
    }
    const stdin = child.stdin.getWriter();
    const stdout = child.stdout.getReader();
    const stderr = new Response(child.stderr).text();
    let fd = -1;
    try {
      await stdin.write(new Uint8Array([0x0a]));
      const echoed = await stdout.read();
      if (echoed.done) {
        await stdin.close().catch(() => {});
        const status = await child.status;
        throw new Error(
          `creating a user namespace: unshare exited with ${status.code}: ${(await stderr).trim()}`,
        );
      }
      // `cat` is running, so unshare(CLONE_NEWUSER) is done and the maps can be written
      writeProcFile(`/proc/${child.pid}/uid_map`, procMapText(uidMap));
      writeProcFile(`/proc/${child.pid}/gid_map`, procMapText(gidMap));
      const nsPath = `/proc/${child.pid}/ns/user`;
      fd = check(libc().open(cstr(nsPath), O_RDONLY | O_CLOEXEC, 0), "open", nsPath);
    } finally {
      await stdin.close().catch(() => {});
      await stdout.cancel().catch(() => {});
      if (fd < 0) {
        try {
          child.kill("SIGKILL");
        } catch {
          // already exited
        }
      }
      await child.status;
      await stderr;
    }
    return new UserNamespace(fd);
  }

  /** Closes the fd; mounts already ID-mapped through the namespace keep working. */
  close(): void {
    libc().close(this.fd);
  }
}

/**
 * Bind-mounts `source` (and the mounts below it) at `target` with owners
 * translated through the user namespace `usernsFd`. `target` is created
 * (mode 0700) when missing.
 * @throws {SyscallError} from open_tree, mount_setattr or move_mount.
 */
export function createIDMappedMount(source: string, target: string, usernsFd: number): void {
  const tree = openTree(source, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
  try {
    setIDMap(tree, usernsFd, source);
    try {
      Deno.mkdirSync(target, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    moveMount(tree, target);
  } finally {
    libc().close(tree);
  }
}

/**
 * One-shot form: a user namespace with `maps`, an ID-mapped mount of
 * `source` at `target`, the namespace closed again.
 */
export async function idMappedMount(
  source: string,
  target: string,
  maps: IDMappings,
): Promise<void> {
  const ns = await UserNamespace.create(maps.uidMap, maps.gidMap);
  try {
    createIDMappedMount(source, target, ns.fd);
  } finally {
    ns.close();
  }
}
