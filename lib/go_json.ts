/**
 * JSON the way Go's encoding/json writes the store's files: struct fields
 * in declaration order, `omitempty` rules, sorted map keys and HTML
 * escaping, so that a file we write is byte for byte what
 * containers/storage would write for the same records.
 *
 * @example
 * ```ts
 * import { goStringify, goStruct } from "./go_json.ts";
 * const fields = [["id", "always"], ["names", "omitempty"], ["created", "time"]] as const;
 * console.log(goStringify(goStruct({ id: "a", names: [] }, fields)));
 * // {"id":"a","created":"0001-01-01T00:00:00Z"}
 * ```
 * @module
 */

/**
 * JSON.stringify plus Go's escaping of <, >, & and the JS line separators;
 * a byte of a file name that is not UTF-8 (lib/os_string.ts) becomes
 * U+FFFD, as Go's encoder makes it.
 */
export function goStringify(value: unknown): string {
  return notUTF8(JSON.stringify(value)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/** JSON text with the escapes JSON.stringify gives those bytes (`\udcXX`) made `\ufffd`. */
function notUTF8(json: string): string {
  if (!json.includes("\\udc")) return json;
  // An escape, not an escaped backslash before "udc…": an even run of backslashes before it.
  return json.replace(/(?<!\\)((?:\\\\)*)\\udc[89a-f][0-9a-f]/g, "$1\\ufffd");
}

/** Go's `omitempty`: empty strings, zeros, false, nil and empty slices/maps are left out. */
export function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

/** Go's encoding/json sorts map keys, also in maps nested in interface{} values. */
export function sortKeys(v: unknown): unknown {
  // every save re-encodes every record: arrays of plain values (uidset,
  // names) go out as they are instead of being copied
  if (Array.isArray(v)) {
    return v.some((x) => x !== null && typeof x === "object") ? v.map(sortKeys) : v;
  }
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      out[k] = sortKeys((v as Record<string, unknown>)[k]);
    }
    return out;
  }
  return v;
}

/** How one field of a Go struct is marshalled. */
export type FieldRule = "omitempty" | "always" | "time";

/**
 * The object Go would marshal for a record: fields in struct order, empty
 * ones dropped where the struct says `omitempty`, maps with sorted keys.
 * A `time` field is never dropped (time.Time is a struct to encoding/json).
 */
export function goStruct(
  record: object,
  fields: readonly (readonly [string, FieldRule])[],
): Record<string, unknown> {
  const r = record as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, rule] of fields) {
    const v = r[key];
    if (rule === "time") out[key] = v ?? "0001-01-01T00:00:00Z";
    else if (rule === "always") out[key] = v ?? "";
    else if (!isEmpty(v)) out[key] = sortKeys(v);
  }
  return out;
}
