/**
 * Progress of work that moves a layer (an import, an applied diff, a diff
 * read back): what library callers get through an optional `onProgress`
 * callback instead of parsing any output.
 *
 * The callback is called synchronously, often (once per chunk), so it
 * should be cheap; a display throttles itself (see `lib/cli/progress.ts`).
 * Counts only grow, and the last call carries the final counts.
 *
 * @example
 * ```ts
 * import { type Progress, ProgressCounter } from "./progress.ts";
 * const seen: Progress[] = [];
 * const counter = new ProgressCounter({ onProgress: (p) => seen.push(p), expectedSize: 3 });
 * const out = ReadableStream.from([new Uint8Array(3)]).pipeThrough(counter.bytes());
 * await new Response(out).arrayBuffer();
 * counter.entry();
 * counter.report();
 * console.log(seen.at(-1)); // { bytes: 3, entries: 1, total: 3 }
 * ```
 * @module
 */

import { TarParser } from "./archive/tar_reader.ts";

/** A snapshot of the work done so far. */
export interface Progress {
  /**
   * Bytes moved so far: as received (before decompression) for an import or
   * an applied diff, as produced (before compression) for a diff.
   */
  bytes: number;
  /** Tar entries seen so far (extension headers are part of their entry). */
  entries: number;
  /** The bytes expected in all, when known (a file's size, a layer's recorded diff size). */
  total?: number;
}

/** Receives {@linkcode Progress} snapshots. */
export type ProgressCallback = (progress: Progress) => void;

/** The progress options of the operations that move a layer. */
export interface ProgressOptions {
  /** Called as the work advances; nothing is counted without it. */
  onProgress?: ProgressCallback;
  /** Bytes the input holds, when the caller knows (reported back as `total`). */
  expectedSize?: number;
}

/** Counts bytes and entries and reports them to a {@linkcode ProgressCallback}. */
export class ProgressCounter {
  #bytes = 0;
  #entries = 0;
  readonly #onProgress: ProgressCallback;
  readonly #total: number | undefined;

  /** @param opts The callback (required here) and the expected size. */
  constructor(opts: ProgressOptions & { onProgress: ProgressCallback }) {
    this.#onProgress = opts.onProgress;
    this.#total = opts.expectedSize;
  }

  /** Counts one entry (reported with the next bytes, or by {@linkcode report}). */
  entry(): void {
    this.#entries++;
  }

  /** Counts `n` bytes and reports. */
  add(n: number): void {
    this.#bytes += n;
    this.report();
  }

  /** Sets the bytes done to `bytes` (a count kept elsewhere) and reports. */
  at(bytes: number): void {
    this.#bytes = bytes;
    this.report();
  }

  /** Reports the current counts. */
  report(): void {
    const p: Progress = { bytes: this.#bytes, entries: this.#entries };
    if (this.#total !== undefined) p.total = this.#total;
    this.#onProgress(p);
  }

  /** A pass-through stage that counts the bytes flowing through it. */
  bytes(): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: (chunk, c) => {
        c.enqueue(chunk);
        this.add(chunk.length);
      },
    });
  }
}

/**
 * A counter reporting to `opts.onProgress`, or undefined when there is no
 * callback (so that nothing is counted).
 */
export function progressCounter(opts: ProgressOptions = {}): ProgressCounter | undefined {
  const { onProgress } = opts;
  return onProgress ? new ProgressCounter({ ...opts, onProgress }) : undefined;
}

/**
 * A pass-through stage counting a tar's bytes and entries into `counter`,
 * reporting the final counts when the tar ends. Malformed input only stops
 * the counting of entries: whoever reads the tar reports what is wrong.
 */
export function countTar(counter: ProgressCounter): TransformStream<Uint8Array, Uint8Array> {
  const ignore = () => {};
  let parser: TarParser | undefined = new TarParser({
    header: () => counter.entry(),
    data: ignore,
    entryEnd: ignore,
  });
  return new TransformStream({
    transform(chunk, c) {
      c.enqueue(chunk);
      try {
        parser?.push(chunk);
      } catch {
        parser = undefined;
      }
      counter.add(chunk.length);
    },
    flush: () => counter.report(),
  });
}
