/**
 * The worker side of {@linkcode applyTarOffThread} (apply_thread.ts): runs
 * {@linkcode applyTar} on the tar bytes the starting thread posts, so the
 * apply's system calls (file creation, writes, ownership, modes, times)
 * run on a core of their own while that thread reads, inflates, hashes and
 * records the tar-split.
 *
 * Messages in: `{ t: "start", target, opts }`, then `{ t: "data", buf }`
 * (an ArrayBuffer of tar bytes), then `{ t: "end" }` or `{ t: "abort" }`.
 * Messages out: `{ t: "ready" }` once loaded, `{ t: "ack", buf }` giving
 * each buffer back once the apply has read past it, and last `{ t: "done", result }` or `{ t: "failed", error }`
 * — only when the apply has returned, so no file is touched after it.
 *
 * @example
 * ```ts ignore
 * const w = new Worker(new URL("./apply_worker.ts", import.meta.url), { type: "module" });
 * w.postMessage({ t: "start", target: "/tmp/rootfs", opts: { whiteoutFormat: "aufs" } });
 * ```
 * @module
 */

import { applyTar } from "./apply.ts";
import { toWireError } from "../thread_error.ts";

/** The worker's global scope, as far as this module uses it. */
const scope = globalThis as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
};

type Item = Uint8Array<ArrayBuffer> | "end" | "abort";

const queue: Item[] = [];
let wake: (() => void) | undefined;
let held: Uint8Array<ArrayBuffer> | undefined; // the buffer the apply reads now

const tar = new ReadableStream<Uint8Array>({
  async pull(ctl) {
    while (queue.length === 0) await new Promise<void>((r) => wake = r);
    // the apply is done with a chunk once it reads the next: its buffer goes back
    if (held) scope.postMessage({ t: "ack", buf: held.buffer }, [held.buffer]);
    held = undefined;
    const item = queue.shift()!;
    if (item === "end") return ctl.close();
    if (item === "abort") return ctl.error(new Error("layer stream aborted"));
    held = item;
    ctl.enqueue(item);
  },
}, { highWaterMark: 0 });

scope.onmessage = (ev: MessageEvent) => {
  const m = ev.data;
  if (m.t === "start") {
    applyTar(tar, m.target, m.opts).then(
      (result) => scope.postMessage({ t: "done", result }),
      (e) => scope.postMessage({ t: "failed", error: toWireError(e) }),
    );
    return;
  }
  queue.push(m.t === "data" ? new Uint8Array(m.buf, 0, m.len) : m.t);
  wake?.();
  wake = undefined;
};

scope.postMessage({ t: "ready" });
