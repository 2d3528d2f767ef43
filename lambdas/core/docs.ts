/**
 * The documentation routes' answers: the OpenAPI document (core/openapi.ts) as JSON, and a page
 * that renders it, served by the api function itself with everything it loads, so that it works
 * offline, behind a firewall, with no CDN: the page's scripts and style sheets are answered under
 * /v1/docs/, the greedy /v1 route's, and its Content-Security-Policy allows scripts from this
 * origin only, none inline.
 *
 * The renderer is Swagger UI (swagger-ui-dist), among the kept libraries:
 * - it renders OpenAPI 3.1 (its JSON Schema 2020-12 too) and has "Try it out": its Authorize
 *   dialog takes the document's two schemes, Basic and Bearer, so a job can be submitted,
 *   listed or cancelled from the page against the deployment that serves it (connect-src 'self');
 * - its distribution is two files, a script and a style sheet, that need no inline script and no
 *   eval: the page loads them and one script of ours (below) that starts it;
 * - it is the one the most people have met, maintained (5.x, 2025).
 * Redoc 3 has no console, is larger (a 2.3 MB standalone script), and declares Node 22 or newer;
 * Scalar's standalone script is larger still, with a Vue application's dependencies; RapiDoc is
 * smaller (0.9 MB) but reaches for fonts on a CDN and is updated less. swagger-ui-dist's one
 * dependency, @scarf/scarf, would report the install: package.json turns it off
 * (`scarfSettings`, and `allowScripts` refuses its install script).
 *
 * The weight: Swagger UI's script and style sheet are 1.9 MB of text. In the api function's bundle
 * they would be parsed at every cold start (measured: +39 ms of import, against a target of 100),
 * and would take the bundle past the 1 MiB test/infra/stack.test.ts holds it under. So they are
 * files beside the bundle (`docs-assets/`, copied there by the bundling's command hook in
 * lib/constructs/functions.ts, as core/docs-assets.ts lists them), read when first asked for and kept for the
 * process; in the local stack, which runs the handlers from source under tsx, and in the tests,
 * they are read from node_modules. Each is served under a name with its content's hash, cached a
 * year (immutable); the page itself and the document are revalidated.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire as resolverAt } from 'node:module';
import { fileURLToPath } from 'node:url';
import { docsAssetDir, vendorAssets, type VendorAsset } from './docs-assets.ts';
import type { Answer } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { assetAnswer, assetHrefs, assetsOnce, besidePage, namedAsset, pageAnswer, pageHtml, pagePolicy } from './pages.ts';

/**
 * Ours: the script that starts Swagger UI on this deployment's document. It finds the document
 * beside itself (/v1/docs/x.js → /v1/openapi.json), so the page works under any base path.
 * Swagger UI's own validator badge would send the document to validator.swagger.io: it is off.
 */
const startScript = `'use strict';
(function () {
  var here = document.currentScript.src;
  window.ui = SwaggerUIBundle({
    url: new URL('../openapi.json', here).href,
    dom_id: '#docs',
    deepLinking: true,
    validatorUrl: null,
    queryConfigEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    defaultModelsExpandDepth: 0,
  });
})();
`;

const pageStyle = `body { margin: 0; background: #fafafa; }
.docs-header { font: 14px/1.5 sans-serif; padding: 12px 20px; background: #1b1b1b; color: #fff; }
.docs-header a { color: #9fd3ff; }
`;

const resolve = resolverAt(import.meta.url);

/** A renderer file: beside the bundle (on AWS), else in node_modules (from source: the local stack, tests). */
export function vendorAssetPath(asset: VendorAsset, bundleDir = fileURLToPath(new URL('.', import.meta.url))): string {
  const beside = `${bundleDir}/${docsAssetDir}/${asset.file}`;
  return existsSync(beside) ? beside : resolve.resolve(asset.module);
}

/** Every asset of the page: read at the first call, kept for the process. */
const pageAssets = assetsOnce(async () => {
  const vendor = await Promise.all(vendorAssets.map(async (each) => namedAsset(each.file, await readFile(vendorAssetPath(each), 'utf8'))));
  return [...vendor, namedAsset('docs.js', startScript), namedAsset('docs.css', pageStyle)];
});

/**
 * A page's policy (pages.ts): everything from this origin only. Style sheets none inline:
 * Swagger UI's React sets styles through the CSSOM, which CSP allows; headless Chromium renders
 * the page, an operation opened, with no violation reported. Images and fonts from it too, and
 * as data: URLs (its icons); its requests are the document's and "Try it out"'s.
 */
export const docsContentSecurityPolicy = pagePolicy("img-src 'self' data:", "font-src 'self' data:");

/** GET /v1/docs: the page, its assets named relative to it (/v1/docs → docs/x, /v1/docs/ → x). */
export async function docsPage(path: string): Promise<Answer> {
  const map = await pageAssets();
  const href = assetHrefs(map, path, 'docs');
  const documentHref = besidePage(path, 'openapi.json');
  const text = pageHtml(
    'waas API reference',
    [`<link rel="stylesheet" href="${href('swagger-ui.css')}">`, `<link rel="stylesheet" href="${href('docs.css')}">`],
    [
      `<div class="docs-header">waas API reference · the OpenAPI 3.1 document: <a href="${documentHref}">openapi.json</a></div>`,
      `<noscript><p>This page renders the OpenAPI document with a script; without one, read <a href="${documentHref}">openapi.json</a>.</p></noscript>`,
      '<div id="docs"></div>',
      `<script src="${href('swagger-ui-bundle.js')}"></script>`,
      `<script src="${href('docs.js')}"></script>`,
    ],
  );
  return pageAnswer(text, docsContentSecurityPolicy);
}

/** GET /v1/docs/{asset}: one of the page's scripts or style sheets, by its hashed name. */
export async function docsAsset(name: string): Promise<Answer> {
  return assetAnswer(await pageAssets(), name, 'documentation');
}

let documentText: string | undefined;

/** GET /v1/openapi.json: the document, serialised once. */
export function openApiAnswer(): Answer {
  documentText ??= JSON.stringify(openApiDocument());
  return {
    statusCode: 200,
    body: {},
    text: documentText,
    headers: { 'content-type': 'application/json', 'x-content-type-options': 'nosniff', 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' },
  };
}
