/**
 * Optional native libraries: ones that make a hot path faster (ISA-L's
 * inflate and CRC-64, OpenSSL's SHA-256) but that the code can do without,
 * falling back to `node:zlib` / `node:crypto` / JavaScript. A library is
 * opened on first use; one that is missing, that `--allow-ffi` does not
 * permit, or that is turned off with `DENOSTORE_NATIVE=0` is simply absent.
 *
 * @example
 * ```ts ignore
 * import { openOptional } from "./optional_lib.ts";
 * const lib = openOptional("libisal.so.2", { crc64_iso_refl: { parameters: ["u64", "buffer", "u64"], result: "u64" } });
 * if (lib) console.log("ISA-L is here");
 * ```
 * @module
 */

/** Whether native libraries are turned off (`DENOSTORE_NATIVE=0`); read on every call, so tests can switch. */
export function nativeDisabled(): boolean {
  try {
    return Deno.env.get("DENOSTORE_NATIVE") === "0";
  } catch {
    return false; // no --allow-env: the default
  }
}

const opened = new Map<string, Deno.DynamicLibrary<Deno.ForeignLibraryInterface> | null>();

/**
 * The symbols of library `name`, or undefined when it cannot be used (see
 * the module doc). The open is tried once per process.
 */
export function openOptional<S extends Deno.ForeignLibraryInterface>(
  name: string,
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] | undefined {
  if (nativeDisabled()) return undefined;
  if (!opened.has(name)) {
    let lib: Deno.DynamicLibrary<S> | null = null;
    try {
      lib = Deno.dlopen(name, symbols);
    } catch {
      // absent, not permitted, or lacking a symbol: the fallback does the work
    }
    opened.set(name, lib as Deno.DynamicLibrary<Deno.ForeignLibraryInterface> | null);
  }
  return (opened.get(name) as Deno.DynamicLibrary<S> | null)?.symbols;
}
