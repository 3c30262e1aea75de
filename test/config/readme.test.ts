/** Keeps the README's configuration table true: one row per schema key, same variable, default and text. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { describeSettings } from '../../src/config';

t.test('README configuration table matches the schema', async (t) => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const rows = readme.split('\n').filter((l) => /^\| `[A-Z_]+` \| `[a-zA-Z.]+` \|/.test(l));
  const expected = describeSettings().map((r) => `| \`${r.env}\` | \`${r.key}\` | \`${r.default.replace(/^"|"$/g, '')}\` | ${r.doc} |`);
  t.same(rows, expected);
});
