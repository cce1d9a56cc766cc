// Bundles the broker (cli/src/main.ts and everything it imports from libs/ and services/) into dist/broker.mjs with
// esbuild, so that services run compiled JavaScript instead of TypeScript through a loader: a service starts in a
// fraction of a second. Dependencies stay in node_modules (not bundled). `bin/broker.mjs` calls ensureBundle()
// before it runs anything, so the bundle is rebuilt whenever a source is newer than it — there is no build step
// to forget; `npm run build` runs it on its own. Run files (schema, Lua scripts, console pages) are read from
// the package root (libs/runtime/src/paths.ts), so the bundle needs no copies of them.
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);
const OUT = new URL('dist/broker.mjs', root);
const SOURCES = ['cli', 'libs', 'services'];

/** The newest modification time of the sources the bundle is made from (and package.json's import map). */
function newestSource() {
  let newest = statSync(new URL('package.json', root)).mtimeMs;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of SOURCES) walk(fileURLToPath(new URL(dir, root)));
  return newest;
}

/** The bundle's URL, built first when it is missing or older than a source. */
export async function ensureBundle({ force = false } = {}) {
  if (!force && existsSync(OUT) && statSync(OUT).mtimeMs >= newestSource()) return OUT;
  const { build } = await import('esbuild');
  mkdirSync(new URL('dist/', root), { recursive: true });
  // Several processes may start at once: each writes its own file and renames it into place (atomic).
  const partial = new URL(`dist/broker.${process.pid}.${Date.now()}.partial.mjs`, root);
  await build({
    entryPoints: [fileURLToPath(new URL('cli/src/main.ts', root))],
    outfile: fileURLToPath(partial),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    keepNames: true,
    logLevel: 'warning',
  });
  renameSync(partial, OUT);
  return OUT;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const out = await ensureBundle({ force: true });
  const size = Math.round(statSync(out).size / 1024);
  process.stderr.write(
    `built ${fileURLToPath(out)} (${size} KiB) in ${Math.round(performance.now() - started)} ms\n`,
  );
}
