/**
 * The console's serving (core/console.ts) through the api function over in-memory ports, its
 * files built from console/src as the bundling builds them: a page with no inline script under a
 * CSP that forbids one, its two files from its own origin, no credentials asked or taken, and
 * the gateway's routes to it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsole } from '../../console/build.ts';
import { consoleAssetDir, consoleDirEnv, consoleFiles } from '../../lambdas/core/console-assets.ts';
import { consoleContentSecurityPolicy, consoleFilesDir } from '../../lambdas/core/console.ts';
import { gatewayRoutes } from '../../local/front.ts';
import { callApiRaw } from '../support/api.ts';
import { ManualClock, MemoryClientStore, memoryApiDeps } from '../support/memory.ts';

let dir: string;
const { deps } = memoryApiDeps(new ManualClock(0), new MemoryClientStore());
const get = (path: string, method = 'GET') => callApiRaw(deps, { method, path });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'waas-console-'));
  await buildConsole(join(dir, 'built'));
  process.env[consoleDirEnv] = join(dir, 'built');
}, 60_000);

afterAll(() => {
  delete process.env[consoleDirEnv];
  rmSync(dir, { recursive: true, force: true });
});

/** The page's script and style sheet references, resolved against `page`. */
const referencesOf = (html: string, page: string) => [...html.matchAll(/<(script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((match) => ({ element: match[1], url: new URL(match[2] ?? '', `http://h${page}`) }));

describe('GET /console', () => {
  it('answers a page without credentials, its scripts all files of its own origin, under a CSP that forbids inline script and every other origin', async () => {
    const page = await get('/console');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(consoleContentSecurityPolicy);
    const directives = consoleContentSecurityPolicy.split('; ');
    expect(directives).toContain("script-src 'self'");
    expect(directives).toContain("default-src 'none'");
    expect(directives).toContain("connect-src 'self'");
    expect(consoleContentSecurityPolicy).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    const html = page.text;
    // Every script element has a src: none carries code of its own, nor an inline handler.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/\bsrc="/);
      expect(body).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+=|style=/i);
    const references = referencesOf(html, '/console').filter((each) => !each.url.href.startsWith('data:'));
    expect(references.map((each) => each.element).sort()).toEqual(['link', 'script']);
    for (const { url } of references) {
      expect(url.origin).toBe('http://h');
      expect(url.pathname).toMatch(/^\/console\/console\.[0-9a-f]{16}\.(js|css)$/);
    }
  });

  it('serves its script and style sheet by hashed name, as the built files, cached a year; any other name, or another method, is a 404', async () => {
    const html = (await get('/console')).text;
    for (const { element, url } of referencesOf(html, '/console').filter((each) => each.url.protocol === 'http:')) {
      const asset = await get(url.pathname);
      expect(asset.statusCode, url.pathname).toBe(200);
      expect(asset.headers['content-type']).toBe(element === 'script' ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(asset.text.length).toBeGreaterThan(1_000);
    }
    expect((await get('/console/console.0000000000000000.js')).statusCode).toBe(404);
    expect((await get('/console/console.js')).statusCode).toBe(404);
    expect((await get('/console/a/b')).statusCode).toBe(404);
    expect((await get('/console', 'POST')).statusCode).toBe(404);
  });

  it('reads the built files from beside the bundle when the bundling put them there, else from the folder the local stack names', () => {
    const bundleDir = join(dir, 'bundle');
    mkdirSync(join(bundleDir, consoleAssetDir), { recursive: true });
    expect(consoleFilesDir(join(dir, 'elsewhere'), { [consoleDirEnv]: '/named' })).toBe('/named');
    for (const file of consoleFiles) writeFileSync(join(bundleDir, consoleAssetDir, file), '');
    expect(consoleFilesDir(bundleDir, { [consoleDirEnv]: '/named' })).toBe(join(bundleDir, consoleAssetDir));
    expect(() => consoleFilesDir(join(dir, 'elsewhere'), {})).toThrow(/console\/build\.ts/);
  });

  it('is routed by the gateway: the page, and one level of files under it, GET only', () => {
    const route = gatewayRoutes();
    expect(route('GET', '/console')).toBe('GET /console');
    expect(route('GET', '/console/console.abc.js')).toBe('GET /console/{proxy+}');
    expect(route('POST', '/console')).toBeUndefined();
    expect(route('GET', '/consoles')).toBeUndefined();
  });
});
