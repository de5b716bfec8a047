/**
 * The box-drawing tree that `layers --tree` prints: each node hangs under
 * its parent ("(base)" for base layers), notes (names, mount points) are
 * printed under the node they belong to.
 *
 * @example
 * ```ts
 * import { renderTree } from "./tree.ts";
 * console.log(renderTree([{ left: "(base)", right: "a", notes: ["name: x"] }]));
 * // (base)\n└─a\n  name: x\n
 * ```
 * @module
 */

/** One edge of the tree: `right` hangs under `left`. */
export interface TreeNode {
  /** The parent node's label. */
  left: string;
  /** This node's label. */
  right: string;
  /** Lines printed under this node. */
  notes: string[];
}

/** A root (a `left` that is nobody's `right`), preferring the one with fewest children. */
function selectRoot(nodes: TreeNode[]): string {
  const children = new Map<string, number>();
  const areChildren = new Set(nodes.map((n) => n.right));
  for (const n of nodes) children.set(n.left, (children.get(n.left) ?? 0) + 1);
  let favorite = "";
  for (const [left, count] of children) {
    if (areChildren.has(left)) continue;
    if (favorite === "" || count < children.get(favorite)!) favorite = left;
  }
  return favorite;
}

function printSubTree(
  root: string,
  nodes: TreeNode[],
  indent: number,
  continued: number[],
  out: string[],
): TreeNode[] {
  let leftovers = nodes.filter((n) => n.left !== root);
  const children = nodes.filter((n) => n.left === root);
  children.forEach((child, i) => {
    const prefix = [..." ".repeat(indent)];
    for (const col of continued) prefix[col] = "\u2502";
    const istring = prefix.join("");
    const more = i < children.length - 1;
    out.push(`${istring}${more ? "\u251c" : "\u2514"}\u2500${child.right}\n`);
    for (const note of child.notes) out.push(`${istring}${more ? "\u2502" : " "} ${note}\n`);
    const sub = more ? [...continued, indent] : [...continued];
    leftovers = printSubTree(child.right, leftovers, indent + 2, sub, out);
  });
  return leftovers;
}

/** Renders the nodes as the reference prints them. */
export function renderTree(nodes: TreeNode[]): string {
  const out: string[] = [];
  while (nodes.length > 0) {
    const root = selectRoot(nodes);
    out.push(`${root}\n`);
    const before = nodes.length;
    nodes = printSubTree(root, nodes, 0, [], out);
    if (nodes.length === before) break;
  }
  return out.join("");
}
