/**
 * The console (GET /console): a page to look at a client's jobs instead of reading their JSON —
 * sign in with the client id and token, the jobs by status, a job's request, attempts and
 * callback, cancel and replay. It is an application of the v1 API and nothing else: the page
 * and its two files (console/src, built by console/build.ts) hold no data and no credentials, so
 * they are answered without any; the script calls /v1 with the token the user typed.
 *
 * Served like the API reference (core/docs.ts): by the api function itself, so it works on AWS
 * and locally with no CDN; its script and style sheet are files beside the bundle, read when
 * first asked for (not parsed at every cold start), each under a name with its content's hash,
 * cached a year; the page revalidated. Loaded only by these routes (api.ts imports it when one is
 * asked for).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consoleAssetDir, consoleDirEnv, consoleFiles, consolePath } from './console-assets.ts';
import { RouteNotFound, type Answer } from './errors.ts';
import { assetAnswer, assetHrefs, assetsOnce, besidePage, namedAsset, pageAnswer, pageHtml, pagePolicy } from './pages.ts';

/** The folder of the built files: beside the bundle (on AWS), else the one `consoleDirEnv` names (the local stack, tests). */
export function consoleFilesDir(bundleDir = fileURLToPath(new URL('.', import.meta.url)), vars: NodeJS.ProcessEnv = process.env): string {
  const beside = join(bundleDir, consoleAssetDir);
  if (existsSync(beside)) return beside;
  const named = vars[consoleDirEnv];
  if (!named) throw new Error(`the console's files are neither beside the bundle (${consoleAssetDir}/) nor in a folder ${consoleDirEnv} names: build them with console/build.ts`);
  return named;
}

const pageAssets = assetsOnce(async () => {
  const dir = consoleFilesDir();
  return Promise.all(consoleFiles.map(async (file) => namedAsset(file, await readFile(join(dir, file), 'utf8'))));
});

/**
 * A page's policy (pages.ts): its own origin only, and nothing inline. Its requests are the v1
 * API's, same origin: the token goes nowhere else. Images only as data: URLs (the page's icon, so
 * that the browser asks no /favicon.ico). Nothing may frame it (its buttons cancel jobs), and no
 * form is sent anywhere: the sign-in form is read by the script.
 */
export const consoleContentSecurityPolicy = pagePolicy('img-src data:');

/** GET /console: the page, its files named relative to it (/console → console/x, /console/ → x). */
async function consolePage(path: string): Promise<Answer> {
  const map = await pageAssets();
  const href = assetHrefs(map, path, 'console');
  const text = pageHtml(
    'waas console',
    ['<link rel="icon" href="data:,">', `<link rel="stylesheet" href="${href('console.css')}">`, `<script type="module" src="${href('console.js')}"></script>`],
    [
      `<noscript><p>The console is a script that calls the v1 API; without scripts, use the API itself (see <a href="${besidePage(path, 'v1/docs')}">the API reference</a>).</p></noscript>`,
      '<div id="console"></div>',
    ],
  );
  return pageAnswer(text, consoleContentSecurityPolicy);
}

/** GET /console/{asset}: its script or its style sheet, by hashed name. */
async function consoleAsset(name: string): Promise<Answer> {
  return assetAnswer(await pageAssets(), name, 'console');
}

/** Answers GET under /console: the page, or one of its files. */
export async function routeConsole(method: string, path: string): Promise<Answer> {
  const rest = path.slice(consolePath.length).replace(/^\/+/, '');
  if (method.toUpperCase() !== 'GET' || rest.includes('/')) throw new RouteNotFound(`no route for ${method.toUpperCase()} ${path}`);
  return rest === '' ? consolePage(path) : consoleAsset(rest);
}
