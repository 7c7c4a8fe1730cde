// Dictionary helpers: the root codes typed for the tree view, and the value check the platform applies per type.

export const DICT_TYPES = ["STRING", "INT", "BOOL"] as const;
export type DictTypeName = (typeof DICT_TYPES)[number];

/** "a, b\nc" → ["a", "b", "c"] (no blanks, no repeats, at most 100 as the API reads). */
export function parseCodes(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(/[\s,;]+/)) {
    const code = part.trim();
    if (code && !out.includes(code)) out.push(code);
  }
  return out.slice(0, 100);
}

/** Whether `value` is valid for the type (INT: an integer; BOOL: true/false/1/0, any case). */
export function dictValueOk(type: DictTypeName, value: string): boolean {
  if (type === "INT") return /^\s*[+-]?\d+\s*$/.test(value) || /^\s*[+-]?\d+(_\d+)+\s*$/.test(value);
  if (type === "BOOL") return ["true", "false", "1", "0"].includes(value.toLowerCase());
  return true;
}

export interface TreeNode {
  id: string;
  children: readonly TreeNode[];
}

/** How many entries a tree holds (a root and all its descendants). */
export function countNodes(nodes: readonly TreeNode[]): number {
  let n = 0;
  for (const node of nodes) n += 1 + countNodes(node.children);
  return n;
}
