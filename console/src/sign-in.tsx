/**
 * Signing in: the client id and verify token, checked by asking the v1 list for one job (a
 * wrong pair is its 401), then kept for the session only (session.ts).
 */
import { useState } from 'preact/hooks';
import { WaasError } from '@waas/client';
import { failureText } from './format.ts';
import { clientFor, type Credentials } from './session.ts';

export function SignIn({ onSignedIn }: { onSignedIn: (credentials: Credentials) => void }) {
  const [clientId, setClientId] = useState('');
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [refusal, setRefusal] = useState<string>();

  const submit = async (event: Event) => {
    event.preventDefault();
    const credentials = { clientId: clientId.trim(), token: token.trim() };
    setBusy(true);
    setRefusal(undefined);
    try {
      await clientFor(credentials).listPage({ limit: 1 });
      onSignedIn(credentials);
    } catch (error) {
      setRefusal(error instanceof WaasError && error.status === 401 ? `Those credentials were refused: ${error.detail}` : `Could not sign in: ${failureText(error)}`);
      setBusy(false);
    }
  };

  return (
    <section class="card sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in</h1>
      <p class="hint">With a client’s id and verify token (<code>npm run clients -- create</code> makes one). They are kept in this tab’s session only.</p>
      <form onSubmit={submit}>
        <label for="client-id">Client id</label>
        <input id="client-id" name="client-id" autocomplete="username" required value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} />
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {refusal && (
        <p class="alert" role="alert">
          {refusal}
        </p>
      )}
    </section>
  );
}
