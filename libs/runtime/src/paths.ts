// Files the broker reads at run time (the schema, the Lua scripts, the console's pages), found from the package
// root, so that they resolve the same from the TypeScript sources (tests, tsx) and from the bundle in dist/ that
// `bin/broker.mjs` runs.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let root: URL | undefined;

/** The directory holding the broker's package.json: the nearest one above this module. */
function packageRoot(): URL {
  if (root) return root;
  let dir = new URL('.', import.meta.url);
  while (!existsSync(new URL('package.json', dir))) {
    const parent = new URL('..', dir);
    if (parent.href === dir.href) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  root = dir;
  return dir;
}

/** A file of the package, by its path from the package root (`db/schema.sql`). */
export function packageFile(path: string): URL {
  return new URL(path, packageRoot());
}
