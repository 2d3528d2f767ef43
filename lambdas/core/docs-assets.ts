/**
 * The documentation page's renderer files (core/docs.ts): read from beside the api function's
 * bundle, where its bundling copies them (lib/constructs/functions.ts), or from node_modules when
 * the handlers run from source. A module of its own, without imports, so that the CDK app can
 * read the list without loading the core.
 */

/** Where the bundling puts them, beside the api function's bundle. */
export const docsAssetDir = 'docs-assets';

/** Each file's name beside the bundle, and where its package has it. */
export const vendorAssets = [
  { file: 'swagger-ui-bundle.js', module: 'swagger-ui-dist/swagger-ui-bundle.js' },
  { file: 'swagger-ui.css', module: 'swagger-ui-dist/swagger-ui.css' },
] as const;

export type VendorAsset = (typeof vendorAssets)[number];
