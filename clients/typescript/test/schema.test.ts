/**
 * The client's types are the API's: src/schema.ts is what openapi-typescript generates from
 * today's OpenAPI document. After a change to the API, `npm run generate` in clients/typescript.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateSchema, schemaFile } from '../scripts/generate.ts';

describe('the generated types', () => {
  it('are what the OpenAPI document generates now (else: npm run generate in clients/typescript)', async () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(await generateSchema());
  });
});
