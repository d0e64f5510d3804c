import { existsSync, readFileSync } from 'node:fs';

/**
 * The security checklist (`docs/security-checklist.md`), parsed from the file itself: its tables give
 * each item's id, requirement, proof kinds and seeds; its closing paragraph lists what does not apply.
 */

export const proofKinds = ['template', 'config', 'app', 'doc'] as const;
export type ProofKind = (typeof proofKinds)[number];

export interface ChecklistItem {
  readonly id: string;
  /** The section the item belongs to, e.g. "AUTH: authentication and keys". */
  readonly section: string;
  readonly requirement: string;
  readonly proof: readonly ProofKind[];
  readonly seeds: string;
  /** 1-based line of the item in the checklist. */
  readonly line: number;
}

export interface NotApplicableItem {
  readonly item: string;
  readonly seeds: string;
  /** The checklist's own reason, when it gives one. */
  readonly reason?: string;
}

export interface Checklist {
  readonly items: readonly ChecklistItem[];
  readonly notApplicable: readonly NotApplicableItem[];
  /** What each proof kind means, from the checklist's legend. */
  readonly proofLegend: Readonly<Partial<Record<ProofKind, string>>>;
}

export class ChecklistError extends Error {
  override readonly name = 'ChecklistError';
}

/** An item id: a group of capitals, a dash, two digits (AUTH-01). */
export const itemIdPattern = /^[A-Z]+-\d{2}$/;

export function readChecklist(path: string): Checklist {
  if (!existsSync(path)) {
    throw new ChecklistError(
      `the security checklist is missing: expected it at ${path} (docs/security-checklist.md in the repository); pass --checklist <path> to use another file`,
    );
  }
  return parseChecklist(readFileSync(path, 'utf8'));
}

export function parseChecklist(text: string): Checklist {
  const lines = text.split(/\r?\n/);
  const items: ChecklistItem[] = [];
  let section = '';
  lines.forEach((line, index) => {
    const heading = /^##\s+(.+?)\s*$/.exec(line);
    if (heading) section = heading[1];
    const item = parseItemRow(line, section, index + 1);
    if (item) items.push(item);
  });
  if (items.length === 0)
    throw new ChecklistError(
      'the checklist has no item rows (| id | requirement | proof | seeds |)',
    );
  const duplicates = items.filter(
    (item, index) => items.findIndex((other) => other.id === item.id) !== index,
  );
  if (duplicates.length > 0)
    throw new ChecklistError(
      `duplicate checklist ids: ${duplicates.map((item) => item.id).join(', ')}`,
    );
  return { items, notApplicable: parseNotApplicable(lines), proofLegend: parseProofLegend(lines) };
}

function parseItemRow(
  line: string,
  section: string,
  lineNumber: number,
): ChecklistItem | undefined {
  if (!line.trimStart().startsWith('|')) return undefined;
  const cells = line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((cell) => cell.trim());
  if (cells.length < 4 || !itemIdPattern.test(cells[0])) return undefined;
  // A requirement may itself hold a pipe: the proof and seeds are always the last two cells.
  const seeds = cells[cells.length - 1];
  const proofCell = cells[cells.length - 2];
  const requirement = cells.slice(1, -2).join(' | ').trim();
  const proof = proofCell.split(',').map((kind) => kind.trim());
  const unknown = proof.filter((kind) => !(proofKinds as readonly string[]).includes(kind));
  if (unknown.length > 0)
    throw new ChecklistError(
      `line ${lineNumber}: ${cells[0]} has an unknown proof kind '${unknown.join(', ')}' (known: ${proofKinds.join(', ')})`,
    );
  return {
    id: cells[0],
    section,
    requirement,
    proof: proof as ProofKind[],
    seeds,
    line: lineNumber,
  };
}

/** `- **template**: an assertion on ...` */
function parseProofLegend(lines: readonly string[]): Partial<Record<ProofKind, string>> {
  const legend: Partial<Record<ProofKind, string>> = {};
  for (const line of lines) {
    const match = /^-\s+\*\*(\w+)\*\*:\s*(.+?)\s*$/.exec(line);
    if (match && (proofKinds as readonly string[]).includes(match[1]))
      legend[match[1] as ProofKind] = match[2].replace(/[;.]$/, '');
  }
  return legend;
}

/**
 * The closing paragraph: "Items that do not apply to this system, with the reason ...:" then
 * `name (seeds: reason)` entries separated by semicolons.
 */
function parseNotApplicable(lines: readonly string[]): NotApplicableItem[] {
  const start = lines.findIndex((line) => /do not apply/i.test(line));
  if (start === -1) return [];
  const paragraph: string[] = [];
  for (const line of lines.slice(start)) {
    if (line.trim() === '' && paragraph.length > 0) break;
    paragraph.push(line.trim());
  }
  const text = paragraph.join(' ');
  const body = text
    .slice(text.indexOf(':', text.search(/do not apply/i)) + 1)
    .trim()
    .replace(/\.$/, '');
  return splitOutsideParentheses(body, ';')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const match = /^(.*?)\s*\(([^:)]*)(?::\s*(.*))?\)$/.exec(entry);
      if (!match) return { item: entry, seeds: '' };
      return { item: match[1].trim(), seeds: match[2].trim(), reason: match[3]?.trim() };
    });
}

/** Splits on `separator` where it is not inside parentheses (a reason may hold a semicolon). */
function splitOutsideParentheses(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const character of text) {
    if (character === '(') depth += 1;
    if (character === ')') depth = Math.max(0, depth - 1);
    if (character === separator && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += character;
    }
  }
  parts.push(current);
  return parts;
}
