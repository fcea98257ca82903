import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

/**
 * Every decision tag a comment or a test title cites (`D9`, `A7`, `D-5`, `seed #8`) is defined in
 * docs/design.md, so a tag in the code always leads somewhere for a reader of this repository.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const TAG = /\b(?:[ABC]\d{1,2}|D-?\d{1,2})\b|\bseed #\d+/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

/** The comments of a file and the titles of its describe/it/test calls: where tags are cited. */
function citingText(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const out = new Set<string>();
  const comments = (ranges: ts.CommentRange[] | undefined): void => {
    for (const r of ranges ?? []) out.add(text.slice(r.pos, r.end));
  };
  const visit = (node: ts.Node): void => {
    comments(ts.getLeadingCommentRanges(text, node.pos));
    comments(ts.getTrailingCommentRanges(text, node.end));
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression)) {
      const first = node.arguments[0];
      if (['describe', 'it', 'test'].includes(node.expression.text) && first && ts.isStringLiteralLike(first))
        out.add(first.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  // Comments at the very end of a file belong to no node.
  comments(ts.getLeadingCommentRanges(text, source.endOfFileToken.pos));
  return [...out];
}

/** The tags docs/design.md defines: each as a bold `**tag**` at the start of its entry. */
function definedTags(): Set<string> {
  const doc = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');
  return new Set([...doc.matchAll(/^- \*\*([^*]+)\*\*/gm)].map((m) => m[1]!));
}

describe('docs/design.md', () => {
  it('defines every tag cited in the comments and test titles of src/, test/ and bench/', () => {
    const defined = definedTags();
    const missing: string[] = [];
    let cited = 0;
    for (const file of ['src', 'test', 'bench'].flatMap(sourceFiles)) {
      for (const text of citingText(file)) {
        for (const [tag] of text.matchAll(TAG)) {
          cited++;
          if (!defined.has(tag)) missing.push(`${file}: ${tag}`);
        }
      }
    }
    assert.ok(cited > 50, `only ${cited} tag citations found: is the scan still reading comments?`);
    assert.deepEqual(missing, [], 'cited tags missing from docs/design.md');
  });

  it('defines the tags the scan looks for, and nothing twice', () => {
    const doc = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');
    const entries = [...doc.matchAll(/^- \*\*([^*]+)\*\*/gm)].map((m) => m[1]!);
    assert.deepEqual(
      entries.filter((t, i) => entries.indexOf(t) !== i),
      [],
    );
    for (const t of ['D1', 'D21', 'A7', 'B9', 'C6', 'D-6', 'seed #1', 'seed #16']) assert.ok(entries.includes(t), t);
  });
});
