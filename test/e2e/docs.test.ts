/**
 * The documentation routes on the real local stack: the OpenAPI document and the page that
 * renders it, without credentials, the page's every asset from its own origin and answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../../lambdas/core/openapi.ts';
import { removeDir, startStack, type RunningStack } from './harness.ts';

let stack: RunningStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
  if (stack) removeDir(stack.dataDir);
});

describe('the documentation, on the local stack', () => {
  it('GET /v1/openapi.json answers the OpenAPI 3.1 document, with no credentials', async () => {
    const response = await fetch(`${stack.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const document = (await response.json()) as Record<string, unknown>;
    expect(document['openapi']).toBe('3.1.0');
    expect(document).toEqual(openApiDocument());
  });

  it('GET /v1/docs answers a page whose scripts and style sheets are its own origin\'s, each answering 200', async () => {
    for (const path of ['/v1/docs', '/v1/docs/']) {
      const page = await fetch(`${stack.url}${path}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toMatch(/(^|; )script-src 'self'(;|$)/);
      const html = await page.text();
      const references = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((match) => new URL(match[1] ?? '', page.url));
      expect(references.length).toBeGreaterThanOrEqual(4);
      for (const reference of references) {
        expect(reference.origin, reference.href).toBe(new URL(stack.url).origin);
        const asset = await fetch(reference);
        expect(asset.status, reference.pathname).toBe(200);
        expect((await asset.arrayBuffer()).byteLength, reference.pathname).toBeGreaterThan(0);
      }
      // A style sheet is served as one, a script as one: a browser refuses either under another type.
      for (const [element, type] of [['link', 'text/css; charset=utf-8'], ['script', 'text/javascript; charset=utf-8']] as const) {
        const named = [...html.matchAll(new RegExp(`<${element}\\b[^>]*\\b(?:src|href)="([^"]+)"`, 'g'))].map((match) => new URL(match[1] ?? '', page.url));
        expect(named.length, element).toBe(2);
        for (const reference of named) expect((await fetch(reference)).headers.get('content-type'), reference.pathname).toBe(type);
      }
    }
  });
});
