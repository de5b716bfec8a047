/**
 * Platforms (`os/arch[/variant]`) and the choice of an image from an index
 * or manifest list, as containers/image makes it: the host's platform by
 * default, the first entry whose OS and architecture match (and variant,
 * when one is asked for).
 *
 * @example
 * ```ts
 * import { hostPlatform, parsePlatform } from "./platform.ts";
 * console.log(hostPlatform(), parsePlatform("linux/arm64/v8"));
 * ```
 * @module
 */

import { ErrInvalidImage, ErrInvalidReference } from "./errors.ts";
import type { Descriptor } from "./manifest.ts";

/** An OS, architecture and optional variant, in Go's GOOS/GOARCH names. */
export interface Platform {
  /** "linux". */
  os: string;
  /** "amd64", "arm64", … */
  architecture: string;
  /** "v8", "v7", … */
  variant?: string;
}

const ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };

/** The platform of this machine, in Go's names. */
export function hostPlatform(): Platform {
  return { os: Deno.build.os, architecture: ARCH[Deno.build.arch] ?? Deno.build.arch };
}

/**
 * Parses `os/arch[/variant]`.
 * @throws {ErrInvalidReference} when it has another shape.
 */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_]+$/.test(p))) {
    throw new ErrInvalidReference(s, { detail: "a platform is os/arch[/variant]" });
  }
  const [os, architecture, variant] = parts;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** "os/arch[/variant]". */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join("/");
}

/**
 * The entry of an index for `want`; `what` names the index in errors.
 * @throws {ErrInvalidImage} when no entry matches.
 */
export function chooseInstance(manifests: Descriptor[], want: Platform, what: string): Descriptor {
  const found = manifests.find((m) =>
    m.platform?.os === want.os && m.platform?.architecture === want.architecture &&
    (!want.variant || (m.platform.variant ?? "") === want.variant)
  );
  if (!found) {
    throw new ErrInvalidImage(what, {
      detail: `no image for platform ${formatPlatform(want)} in the index`,
    });
  }
  return found;
}
