/**
 * Builds the console (console/src, Preact) into the two files the api function serves
 * (lambdas/core/console-assets.ts): `console.js`, one ES module with everything it imports, and
 * `console.css`. esbuild, as the functions are bundled, for the browsers of the last few years.
 * The CDK bundling runs this for the api function (lib/constructs/functions.ts); the local stack
 * calls `buildConsole` at its start.
 *
 * ```sh
 * node --import tsx console/build.ts OUT_DIR
 * ```
 */
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, stop, type BuildOptions } from 'esbuild';
import { consoleFiles } from '../lambdas/core/console-assets.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

const options = {
  entryPoints: { console: join(here, 'src', 'main.tsx') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Module scripts, optional chaining, top-level await: every browser of the last three years.
  target: ['es2022', 'chrome100', 'firefox100', 'safari16'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // The typed client's source: the same code the package builds, without needing its build first.
  alias: { '@waas/client': join(here, '..', 'clients', 'typescript', 'src', 'index.ts') },
  logLevel: 'warning',
} satisfies BuildOptions;

/**
 * Writes the console's files into `outDir`; their sizes in bytes, by name. Ends esbuild's
 * service process after it (a process builds the console once): the local stack's only child
 * is then its storage process, as its tests and its operator expect.
 */
export async function buildConsole(outDir: string): Promise<Record<string, number>> {
  mkdirSync(outDir, { recursive: true });
  try {
    await build({ ...options, outdir: outDir, absWorkingDir: join(here, '..') });
  } finally {
    await stop();
  }
  return Object.fromEntries(consoleFiles.map((file) => [file, statSync(join(outDir, file)).size]));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2];
  if (!outDir) {
    console.error('usage: node --import tsx console/build.ts OUT_DIR');
    process.exit(2);
  }
  const sizes = await buildConsole(resolve(outDir));
  console.log(JSON.stringify(sizes));
}
