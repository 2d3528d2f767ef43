/**
 * What the api function's two pages share (core/docs.ts, the API reference; core/console.ts,
 * the console): files served under a name with their content's hash, cached a year, read once a
 * process; the page itself revalidated, with a Content-Security-Policy of its own.
 */
import { createHash } from 'node:crypto';
import { RouteNotFound, type Answer } from './errors.ts';

const contentTypes: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

export interface Asset {
  /** Its file's name. */
  file: string;
  /** The name it is served under: its file's stem, its content's hash, its extension. */
  name: string;
  text: string;
  contentType: string;
}

export function namedAsset(file: string, text: string): Asset {
  const dot = file.lastIndexOf('.');
  const ext = file.slice(dot + 1);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  return { file, name: `${file.slice(0, dot)}.${hash}.${ext}`, text, contentType: contentTypes[ext] ?? 'application/octet-stream' };
}

/** A page's assets by the name each is served under, `load`ed at the first call and kept for the process; a failed load is not kept. */
export function assetsOnce(load: () => Promise<Asset[]>): () => Promise<Map<string, Asset>> {
  let assets: Promise<Map<string, Asset>> | undefined;
  return () => {
    if (assets) return assets;
    const loading = load().then((list) => new Map(list.map((each) => [each.name, each])));
    assets = loading;
    // The next request tries again.
    loading.catch(() => (assets = undefined));
    return loading;
  };
}

/** The name a file is served under. */
const servedName = (map: Map<string, Asset>, file: string): string => [...map.values()].find((each) => each.file === file)?.name ?? '';

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The hrefs of a page's assets, relative to the page, so that it works under any base path:
 * from /x the page's `dir`/<name>, from /x/ plain <name>.
 */
export function assetHrefs(map: Map<string, Asset>, path: string, dir: string): (file: string) => string {
  const base = path.endsWith('/') ? '' : `${dir}/`;
  return (file) => escapeHtml(`${base}${servedName(map, file)}`);
}

/** The href of a path beside the page, relative to it as its assets are: from /x, plain `href`; from /x/, ../`href`. */
export const besidePage = (path: string, href: string): string => `${path.endsWith('/') ? '../' : ''}${href}`;

/**
 * A page's Content-Security-Policy: scripts and style sheets from its own origin only (none
 * inline, no eval), requests to it only; nothing may frame the page, change its base, or send a
 * form from it. `loads` are the directives for what else it loads (its images, its fonts).
 */
export const pagePolicy = (...loads: string[]): string =>
  ["default-src 'none'", "script-src 'self'", "style-src 'self'", ...loads, "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"].join('; ');

/** A page's HTML: its title, what its head links (style sheets, scripts), and its body. */
export const pageHtml = (title: string, head: string[], body: string[]): string =>
  [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    ...head,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');

/** A page: HTML under its Content-Security-Policy, revalidated (it names its assets by hash, so a new deployment's page is seen). */
export function pageAnswer(text: string, contentSecurityPolicy: string): Answer {
  return {
    statusCode: 200,
    body: {},
    text,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': contentSecurityPolicy,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    },
  };
}

/** One of a page's assets by its hashed name, cached a year; any other name is a 404 naming `what`. */
export function assetAnswer(map: Map<string, Asset>, name: string, what: string): Answer {
  const found = map.get(name);
  if (!found) throw new RouteNotFound(`no ${what} asset ${JSON.stringify(name)}`);
  return {
    statusCode: 200,
    body: {},
    text: found.text,
    headers: { 'content-type': found.contentType, 'x-content-type-options': 'nosniff', 'cache-control': 'public, max-age=31536000, immutable' },
  };
}
