/**
 * `applyTar` (apply.ts) on a thread of its own. An import keeps one thread
 * busy reading, inflating, hashing and recording the tar-split, and the
 * apply's system calls — creating thousands of files and copying their
 * bytes into the page cache — took as long again on the same thread. Here
 * a worker (apply_worker.ts) applies while the calling thread goes on with
 * the stream, so the two halves run on two cores: a 201 MiB rootfs import
 * went from ~2.0 s to ~1.65 s.
 *
 * The tar bytes go over in 128 KiB buffers that are transferred, not
 * copied, and come back for reuse once the worker has read past them; at
 * most six are on their way, so memory stays flat in layer size. Errors
 * come back as the classes they were thrown as (thread_error.ts), and the
 * call settles only after the worker's apply has returned: once it has,
 * nothing writes to `target` any more, whatever the outcome.
 *
 * Without workers — `DENOSTORE_THREADS=0`, or a worker that cannot start
 * (a `deno compile` binary built without `--include` of the worker
 * module) — the apply runs on the calling thread, with the same result.
 *
 * @example
 * ```ts ignore
 * import { applyTarOffThread } from "./apply_thread.ts";
 * const f = await Deno.open("layer.tar");
 * const { size } = await applyTarOffThread(f.readable, "/tmp/rootfs", { whiteoutFormat: "aufs" });
 * ```
 * @module
 */

import type { ApplyOptions, ApplyResult } from "./apply.ts";
import { fromWireError } from "../thread_error.ts";

const BATCH = 128 * 1024;
// Fewer made the two threads wait on each other (the worker idle while
// this thread waited for a buffer back): 2 in flight took ~0.2 s longer.
const IN_FLIGHT = 6;

/** Whether applies stay on the calling thread (`DENOSTORE_THREADS=0`); read on every call. */
function threadsDisabled(): boolean {
  try {
    return Deno.env.get("DENOSTORE_THREADS") === "0";
  } catch {
    return false; // no --allow-env: the default
  }
}

/** Options of {@linkcode applyTarOffThread} about the thread itself. */
export interface ThreadOptions {
  /** The worker's module (default apply_worker.ts beside this one); tests name others. */
  workerModule?: URL;
}

/**
 * Untars `tar` into `target` as `applyTar` (apply.ts) does, on a worker
 * thread. Same contract: `target` must exist; on failure it may hold a
 * partial result, which the caller removes (the worker is done with it by
 * then); `tar` is cancelled when the apply fails.
 * @throws {ErrBadArchive} for malformed or escaping entries, naming the entry.
 */
export async function applyTarOffThread(
  tar: ReadableStream<Uint8Array>,
  target: string,
  opts: ApplyOptions,
  thread: ThreadOptions = {},
): Promise<ApplyResult> {
  if (threadsDisabled()) return await applyHere(tar, target, opts);
  let worker: Worker;
  try {
    const module = thread.workerModule ?? new URL("./apply_worker.ts", import.meta.url);
    worker = new Worker(module, { type: "module" });
  } catch {
    return await applyHere(tar, target, opts);
  }
  const link = new WorkerLink(worker);
  try {
    const r = await feed(link, tar, target, opts);
    return "fallback" in r ? await applyHere(r.fallback, target, opts) : r;
  } finally {
    worker.terminate();
  }
}

/** The apply on this thread; its code loads only then (the worker loads its own). */
async function applyHere(
  tar: ReadableStream<Uint8Array>,
  target: string,
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const { applyTar } = await import("./apply.ts");
  return await applyTar(tar, target, opts);
}

/**
 * Posts `tar` to the worker and waits for its outcome. Returns the result,
 * or, when the worker could not load, a stream of the whole tar (what was
 * posted, kept until the worker said it was ready, then the rest) for an
 * apply on this thread.
 */
async function feed(
  link: WorkerLink,
  tar: ReadableStream<Uint8Array>,
  target: string,
  opts: ApplyOptions,
): Promise<ApplyResult | { fallback: ReadableStream<Uint8Array> }> {
  const reader = tar.getReader();
  const kept: Uint8Array[] = []; // posted before the worker was ready
  let batch = link.buffer();
  let fill = 0;
  const post = async () => {
    while (link.inFlight >= IN_FLIGHT && !link.over) await link.next();
    if (link.over || fill === 0) return;
    if (link.ready) {
      kept.length = 0;
      link.post(batch, fill);
    } else {
      kept.push(batch.subarray(0, fill));
      link.post(batch.slice(0, fill), fill);
    }
    batch = link.buffer();
    fill = 0;
  };
  let unsent: Uint8Array = new Uint8Array(0); // of the chunk read last, when the worker failed to load
  const rest = () => fallbackStream([...kept, batch.subarray(0, fill), unsent], reader);

  link.worker.postMessage({ t: "start", target, opts });
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        // the input failed: the worker stops at the end of what it has, and then so do we
        link.worker.postMessage({ t: "abort" });
        await link.settled();
        throw e;
      }
      if (r.done) break;
      let off = 0;
      while (off < r.value.length && !link.over) {
        const n = Math.min(BATCH - fill, r.value.length - off);
        batch.set(r.value.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === BATCH) await post();
      }
      if (link.loadError) {
        unsent = r.value.subarray(off);
        return { fallback: rest() };
      }
      if (link.over) break;
    }
    await post();
    if (link.loadError) return { fallback: rest() };
    link.worker.postMessage({ t: "end" });
    await link.settled();
    if (link.loadError) return { fallback: rest() };
    const outcome = link.outcome!;
    if ("error" in outcome) {
      await reader.cancel().catch(() => {});
      throw outcome.error;
    }
    return outcome;
  } finally {
    if (!link.loadError) reader.releaseLock();
  }
}

/** The chunks `first`, then what `reader` has left. */
function fallbackStream(
  first: Uint8Array[],
  reader: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const chunk = first.shift();
      if (chunk) return ctl.enqueue(chunk);
      const r = await reader.read();
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** The calling thread's view of the worker: readiness, buffers in flight, the outcome. */
class WorkerLink {
  /** The worker has loaded and takes data. */
  ready = false;
  /** Buffers posted and not yet given back. */
  inFlight = 0;
  /** The apply's result or error, once it has returned. */
  outcome?: ApplyResult | { error: Error };
  /** Why the worker could not load (it never became ready). */
  loadError?: Error;
  readonly #pool: Uint8Array[] = [];
  #wake?: () => void;

  constructor(readonly worker: Worker) {
    worker.onmessage = (ev: MessageEvent) => {
      const m = ev.data;
      if (m.t === "ready") this.ready = true;
      else if (m.t === "ack") {
        this.inFlight--;
        if (m.buf.byteLength === BATCH) this.#pool.push(new Uint8Array(m.buf));
      } else if (m.t === "done") this.outcome = m.result;
      else if (m.t === "failed") this.outcome = { error: fromWireError(m.error) };
      this.#notify();
    };
    worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      const error = ev.error instanceof Error ? ev.error : new Error(ev.message);
      if (this.ready) this.outcome ??= { error };
      else this.loadError = error;
      this.#notify();
    };
  }

  /** No more data is wanted: the apply has returned, or the worker never loaded. */
  get over(): boolean {
    return this.outcome !== undefined || this.loadError !== undefined;
  }

  /** A buffer of BATCH bytes, one given back when there is one. */
  buffer(): Uint8Array {
    return this.#pool.pop() ?? new Uint8Array(BATCH);
  }

  /** Transfers `buf`'s first `len` bytes to the worker. */
  post(buf: Uint8Array, len: number): void {
    this.inFlight++;
    this.worker.postMessage({ t: "data", buf: buf.buffer, len }, [buf.buffer as ArrayBuffer]);
  }

  /** Resolves at the worker's next message. */
  next(): Promise<void> {
    return new Promise((r) => this.#wake = r);
  }

  /** Resolves once {@linkcode over}. */
  async settled(): Promise<void> {
    while (!this.over) await this.next();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
