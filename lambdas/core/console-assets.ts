/**
 * The console's built files (core/console.ts): a script and a style sheet that console/build.ts
 * makes with esbuild from console/src. The api function's bundling makes them beside its bundle
 * (lib/constructs/functions.ts); the local stack makes them at its start into its DATA_DIR and
 * names that folder in `consoleDirEnv`. A module of its own, without imports, so that the CDK app
 * and the local stack can read the names without loading the core.
 */

/** Where the bundling puts them, beside the api function's bundle. */
export const consoleAssetDir = 'console-assets';

/** Where they are when they are not beside the bundle (the local stack, tests): a folder's path. */
export const consoleDirEnv = 'WAAS_CONSOLE_DIR';

/** The files console/build.ts writes. */
export const consoleFiles = ['console.js', 'console.css'] as const;

/** The path the console is served at; its files are under it. */
export const consolePath = '/console';

export const isConsolePath = (path: string): boolean => path === consolePath || path.startsWith(`${consolePath}/`);
