/**
 * The actions of the image and container big-data commands
 * (`list-…-data`, `get-…-data`, `get-…-data-size`, `get-…-data-digest`,
 * `set-…-data`). Both kinds behave alike; they differ in how the object is
 * found and how failures are worded, which {@linkcode BigDataKind} says.
 * Items are small (manifests, configs), so they are read and written whole,
 * as the reference does.
 *
 * @example
 * ```ts ignore
 * const actions = bigDataActions(imageKind);
 * const command = { names: ["list-image-data"], action: actions.list, … };
 * ```
 * @module
 */

import { ErrDigestUnknown, ErrSizeUnknown } from "../errors.ts";
import type { Store } from "../store/mod.ts";
import type { Context } from "./command.ts";
import { openInput, withOutput, writeStream } from "./files.ts";
import { goJSON } from "./io.ts";
import { CliError } from "./messages.ts";
import { digestProblem } from "./digest.ts";

/** A big-data operation that can fail once the object is found. */
export type BigDataOp = "get" | "size" | "digest" | "set";

/** One kind of object with big data, as the commands use it. */
export interface BigDataKind {
  /** The object's ID for the command's argument; throws with the reference's wording. */
  resolve(store: Store, arg: string): Promise<string>;
  /** Keys of the object's items. */
  list(store: Store, id: string): Promise<string[]>;
  /** An item's content. */
  get(store: Store, id: string, key: string): Promise<Uint8Array>;
  /** An item's size. */
  size(store: Store, id: string, key: string): Promise<number>;
  /** An item's digest. */
  digest(store: Store, id: string, key: string): Promise<string>;
  /** Stores an item. */
  set(store: Store, id: string, key: string, data: Uint8Array): Promise<void>;
  /**
   * The error the reference reports when `op` fails on the item `key` of
   * object `id`, when it is worded for this kind; undefined for the
   * common wording (an unknown size or digest, else `e` itself).
   */
  failure(op: BigDataOp, store: Store, id: string, key: string, e: unknown): Error | undefined;
}

/** The five actions for one kind. */
export interface BigDataActions {
  /** `list-…-data [-j] ID` */
  list(ctx: Context): Promise<number>;
  /** `get-…-data [-f file] ID key` */
  get(ctx: Context): Promise<number>;
  /** `get-…-data-size ID key` */
  size(ctx: Context): Promise<number>;
  /** `get-…-data-digest ID key` */
  digest(ctx: Context): Promise<number>;
  /** `set-…-data [-f file] ID key` */
  set(ctx: Context): Promise<number>;
}

/** Builds the actions of the big-data commands of `kind`. */
export function bigDataActions(kind: BigDataKind): BigDataActions {
  const failure = (op: BigDataOp, store: Store, id: string, key: string, e: unknown) => {
    const worded = kind.failure(op, store, id, key, e);
    if (worded) return worded;
    // The reference's stores report only that they could not tell.
    if (op === "size") return new ErrSizeUnknown(undefined, { cause: e });
    if (op === "digest") return new ErrDigestUnknown(undefined, { cause: e });
    return e;
  };
  /** Runs `op` on the item named by the second argument, rewording its failure. */
  const onItem = async <T>(
    ctx: Context,
    op: BigDataOp,
    fn: (id: string, key: string) => Promise<T>,
  ): Promise<T> => {
    const id = await kind.resolve(ctx.store, ctx.args[0]);
    const key = ctx.args[1];
    try {
      return await fn(id, key);
    } catch (e) {
      throw failure(op, ctx.store, id, key, e);
    }
  };
  return {
    async list(ctx) {
      const id = await kind.resolve(ctx.store, ctx.args[0]);
      const keys = await kind.list(ctx.store, id);
      // Go encodes the empty (nil) list as null.
      if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON(keys.length ? keys : null));
      else ctx.io.out.write(keys.map((k) => `${k}\n`).join(""));
      return 0;
    },
    async get(ctx) {
      const id = await kind.resolve(ctx.store, ctx.args[0]);
      // The reference creates the output file before looking the item up.
      await withOutput(ctx.flags.getString("file"), async (file) => {
        let data: Uint8Array;
        try {
          data = await kind.get(ctx.store, id, ctx.args[1]);
        } catch (e) {
          throw failure("get", ctx.store, id, ctx.args[1], e);
        }
        await writeStream(ReadableStream.from([data]), file, ctx.io.out);
      });
      return 0;
    },
    async size(ctx) {
      const n = await onItem(ctx, "size", (id, key) => kind.size(ctx.store, id, key));
      ctx.io.out.write(`${n}\n`);
      return 0;
    },
    async digest(ctx) {
      const d = await onItem(ctx, "digest", (id, key) => kind.digest(ctx.store, id, key));
      const problem = digestProblem(d);
      if (problem) throw new CliError(problem);
      ctx.io.out.write(`${d}\n`);
      return 0;
    },
    async set(ctx) {
      const id = await kind.resolve(ctx.store, ctx.args[0]);
      const input = await openInput(ctx.flags.getString("file"));
      let data: Uint8Array;
      try {
        data = await new Response(input.stream).bytes();
      } finally {
        input.close();
      }
      try {
        await kind.set(ctx.store, id, ctx.args[1], data);
      } catch (e) {
        throw failure("set", ctx.store, id, ctx.args[1], e);
      }
      return 0;
    },
  };
}
