// The README's configuration table is what operators read: it must name exactly the variables loadConfig reads,
// with the same defaults, in the same order (VARIABLES is the source; the table is checked against it).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VARIABLES } from '#runtime';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The rows of the first table under `## Configuration`: variable, default (undefined for —), doc. */
function configurationTable(markdown: string): Array<{ name: string; default: string | undefined }> {
  const start = markdown.indexOf('\n## Configuration\n');
  if (start === -1) throw new Error('README has no "## Configuration" section');
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end === -1 ? undefined : end);
  const rows = section.split('\n').filter((line) => line.startsWith('|'));
  const [header, rule, ...body] = rows;
  expect(header?.replace(/\s/g, '')).toBe('|Variable|Default|Whatitdoes|');
  expect(rule).toMatch(/^\|(\s*-+\s*\|){3}$/);
  return body.map((row) => {
    const cells = row
      .slice(1, -1)
      .split(' | ')
      .map((cell) => cell.trim());
    const [name, value] = cells;
    const code = (cell: string | undefined) => /^`([^`]*)`$/.exec(cell ?? '')?.[1];
    if (code(name) === undefined) throw new Error(`README row without a \`VARIABLE\`: ${row}`);
    if (value !== '—' && code(value) === undefined)
      throw new Error(`README default is neither \`…\` nor —: ${row}`);
    return { name: code(name)!, default: value === '—' ? undefined : code(value) };
  });
}

describe("the README's configuration table", () => {
  const table = configurationTable(README);

  it('lists exactly the variables loadConfig reads, in the same order', () => {
    expect(table.map((row) => row.name)).toEqual(VARIABLES.map((v) => v.name));
  });

  it('gives each variable the default loadConfig uses', () => {
    expect(table).toEqual(VARIABLES.map((v) => ({ name: v.name, default: v.default })));
  });

  it('says which secrets production requires', () => {
    for (const secret of ['API_KEYS', 'DEVICE_TOKEN_SECRET']) {
      const row = README.split('\n').find((line) => line.startsWith(`| \`${secret}\``));
      expect(row, secret).toMatch(/required in production/);
    }
  });
});
