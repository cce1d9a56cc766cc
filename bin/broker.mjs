#!/usr/bin/env node
// The `broker` command. It runs the compiled bundle (dist/broker.mjs, made by esbuild from the TypeScript
// sources and remade here whenever a source is newer: bin/build.mjs), so there is no build step to forget. Should
// the bundle be impossible to make (a read-only install), the sources run through tsx's loader instead, slower
// to start and otherwise the same.
import { ensureBundle } from './build.mjs';

let bundle;
try {
  bundle = await ensureBundle();
} catch (err) {
  process.stderr.write(
    `broker: running the TypeScript sources (the bundle could not be built: ${err.message})\n`,
  );
}
if (bundle) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/src/main.ts');
}
