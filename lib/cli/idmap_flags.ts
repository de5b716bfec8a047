/**
 * The ID-mapping flags of `create-layer` and `import-layer`
 * (`--uidmap`, `--gidmap`, `--subuidmap`, `--subgidmap`, `--hostuidmap`,
 * `--hostgidmap`) and their translation into layer options, with the
 * reference CLI's error messages.
 *
 * @example
 * ```ts ignore
 * idMappingFlags(fs);
 * fs.parse(["--uidmap", "0:100000:65536"]);
 * const opts = await idMappingOptions(fs); // { uidMap: [{container_id: 0, …}], … }
 * ```
 * @module
 */

import { ErrInvalidIDMap } from "../errors.ts";
import { type IDMap, idMappingsForUser, parseIDMap } from "../idmap.ts";
import type { LayerOptions } from "../layers/layer.ts";
import type { FlagSet } from "./flags.ts";
import { CliError } from "./messages.ts";

/** Defines the six ID-mapping flags. */
export function idMappingFlags(fs: FlagSet): void {
  fs.bool(["-hostuidmap"], false, "Force host UID map");
  fs.bool(["-hostgidmap"], false, "Force host GID map");
  fs.string(["-uidmap"], "", "UID map");
  fs.string(["-gidmap"], "", "GID map");
  fs.string(["-subuidmap"], "", "subuid UID map for a user");
  fs.string(["-subgidmap"], "", "subgid GID map for a group");
}

function parseMap(spec: string, what: string): IDMap[] {
  try {
    return parseIDMap(spec, what);
  } catch (e) {
    if (!(e instanceof ErrInvalidIDMap)) throw e;
    throw new CliError(
      `initializing ID mappings: ${what} setting is malformed expected ` +
        `["uint32:uint32:uint32"]: [${JSON.stringify(spec)}]`,
      { cause: e },
    );
  }
}

/** The mapping part of the layer options the flags ask for. */
export async function idMappingOptions(fs: FlagSet): Promise<LayerOptions> {
  const hostUIDMapping = fs.getBool("hostuidmap");
  const hostGIDMapping = fs.getBool("hostgidmap");
  const uidSpec = fs.getString("uidmap");
  const gidSpec = fs.getString("gidmap");
  let subUID = fs.getString("subuidmap");
  let subGID = fs.getString("subgidmap");
  if (hostUIDMapping && (uidSpec !== "" || subUID !== "")) {
    throw new CliError("host uid map specified along with UID mapping");
  }
  if (hostGIDMapping && (gidSpec !== "" || subGID !== "")) {
    throw new CliError("host gid map specified along with GID mapping");
  }
  if (subGID === "" && subUID !== "") subGID = subUID;
  if (subUID === "" && subGID !== "") subUID = subGID;
  const uidMap: IDMap[] = [];
  const gidMap: IDMap[] = [];
  if (subUID !== "") {
    try {
      const m = await idMappingsForUser(subUID, subGID);
      uidMap.push(...m.uidMap);
      gidMap.push(...m.gidMap);
    } catch (e) {
      if (!(e instanceof ErrInvalidIDMap) || !/no ranges found/.test(e.message)) throw e;
      const [kind, who, file] = e.id === subUID && /subuid/.test(e.message)
        ? ["subuid", `user "${subUID}"`, "/etc/subuid"]
        : ["subgid", `group "${subGID}"`, "/etc/subgid"];
      throw new CliError(`no ${kind} ranges found for ${who} in ${file}`, { cause: e });
    }
  }
  uidMap.push(...parseMap(uidSpec, "uid"));
  gidMap.push(...parseMap(gidSpec, "gid"));
  return { hostUIDMapping, hostGIDMapping, uidMap, gidMap };
}
