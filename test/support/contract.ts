/** What the contract lets the API answer, checked the same way by every test that fuzzes it. */
import { expect } from 'vitest';

const notJson = '{"message":"request type must be JSON","status":"failed"}';

/**
 * The answer has the contract's shape for its status code, and is never a 5xx. `success`: a 2xx
 * is a fine answer here; `gateway`: a route the gateway itself refuses (`{"message":"Not Found"}`).
 */
export function expectContractAnswer(status: number, body: Record<string, unknown>, options: { success?: boolean; gateway?: boolean } = {}): void {
  const text = JSON.stringify(body);
  expect(status, text).toBeLessThan(500);
  switch (status) {
    case 200:
    case 202:
      if (options.success) return;
      break;
    case 400:
    case 413:
    case 429:
      expect(Object.keys(body).sort()).toEqual(['message', 'status']);
      expect(body['status']).toBe('failed');
      expect(typeof body['message']).toBe('string');
      expect(String(body['message']).length).toBeGreaterThan(0);
      return;
    case 401:
      expect(text).toBe('{"status":"bad credentials"}');
      return;
    case 422:
      expect(text).toBe(notJson);
      return;
    case 404:
      if (body['status'] === 'No job with that ID exists') expect(Object.keys(body)).toEqual(['status']);
      else if (options.gateway && body['message'] === 'Not Found') expect(Object.keys(body)).toEqual(['message']);
      else {
        expect(Object.keys(body).sort()).toEqual(['message', 'status']);
        expect(body['status']).toBe('failed');
      }
      return;
  }
  throw new Error(`${status} is not an answer the contract has for this request: ${text}`);
}
