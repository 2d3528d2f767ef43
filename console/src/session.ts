/**
 * The signed-in client: its id and token, kept in sessionStorage and nowhere else (not in
 * localStorage, not in a cookie, not in the URL), so that closing the tab forgets them; and the
 * v1 client (@waas/client) that calls this deployment's API with them.
 */
import { Waas } from '@waas/client';

export interface Credentials {
  clientId: string;
  token: string;
}

const key = 'waas.console.credentials';

export function savedCredentials(): Credentials | undefined {
  try {
    const saved = JSON.parse(sessionStorage.getItem(key) ?? 'null') as Partial<Credentials> | null;
    return typeof saved?.clientId === 'string' && typeof saved.token === 'string' ? { clientId: saved.clientId, token: saved.token } : undefined;
  } catch {
    return undefined;
  }
}

export const saveCredentials = (credentials: Credentials): void => sessionStorage.setItem(key, JSON.stringify(credentials));

export const forgetCredentials = (): void => sessionStorage.removeItem(key);

/**
 * The API is this page's own deployment: the script is served at <base>/console/<file>, so the
 * API's base is two levels up from it, whatever path the deployment is mounted under.
 */
const apiBase = (): string => new URL('..', import.meta.url).href;

/**
 * A v1 client on this deployment. Its requests carry no cookies and no stored credentials of the
 * browser (`credentials: 'omit'`): the token is sent in Authorization alone, and a refusal is
 * answered to the page instead of opening the browser's own sign-in prompt.
 */
export function clientFor(credentials: Credentials): Waas {
  return new Waas({
    baseUrl: apiBase(),
    clientId: credentials.clientId,
    token: credentials.token,
    fetch: (request) => fetch(new Request(request, { credentials: 'omit', cache: 'no-store' })),
  });
}
