import { join } from "node:path";

/** Small Markdown readers for the documentation checks: links, headings, line widths. */

export interface Link {
  readonly line: number;
  readonly target: string;
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fenced = false;
  text.split("\n").forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return;
    }
    if (!fenced) out.push({ line: i + 1, text: line });
  });
  return out;
}

export function linksOf(text: string): Link[] {
  const links: Link[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    // Inline code may show link syntax without being a link.
    const withoutCode = prose.replace(/`[^`]*`/g, "");
    for (const m of withoutCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ line, target: m[1]! });
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(withoutCode);
    if (definition) links.push({ line, target: definition[1]! });
  }
  return links;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
export function headingSlugs(text: string): Set<string> {
  const slugs = new Set<string>();
  for (const { text: prose } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(prose);
    if (!heading) continue;
    const base = heading[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    let slug = base;
    for (let n = 1; slugs.has(slug); n++) slug = `${base}-${n}`;
    slugs.add(slug);
  }
  return slugs;
}

/**
 * Relative links that do not resolve. `lookup` answers, for an absolute path, undefined when no
 * such file exists, else the anchors it offers (empty for non-Markdown files).
 */
export function brokenLinks(
  text: string,
  dir: string,
  lookup: (path: string) => Set<string> | undefined,
): string[] {
  const broken: string[] = [];
  for (const { target } of linksOf(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: — not a file here
    const [path = "", anchor] = target.split("#", 2) as [string, string | undefined];
    const anchors = path === "" ? headingSlugs(text) : lookup(join(dir, decodeURIComponent(path)));
    if (anchors === undefined) {
      broken.push(`${target} (no such file)`);
    } else if (anchor !== undefined && !anchors.has(anchor.toLowerCase())) {
      broken.push(`${target} (no heading '${anchor}')`);
    }
  }
  return broken;
}

/** Lines wider than `limit` outside code blocks and tables, as "line: text". */
export function overlongLines(text: string, limit: number): string[] {
  return proseLines(text)
    .filter(({ text: line }) => line.length > limit && !line.trimStart().startsWith("|"))
    .map(({ line, text: prose }) => `${line}: ${prose}`);
}
