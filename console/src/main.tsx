/**
 * The console's entry (console/build.ts bundles it): signed out, the sign-in form; signed in,
 * the jobs list or one job, as the URL's fragment says.
 */
import { render } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { JobView } from './job.tsx';
import { JobsList } from './jobs.tsx';
import { hrefOf, useRoute } from './route.ts';
import { clientFor, forgetCredentials, savedCredentials, saveCredentials, type Credentials } from './session.ts';
import { SignIn } from './sign-in.tsx';
import './style.css';

function App() {
  const [credentials, setCredentials] = useState<Credentials | undefined>(savedCredentials);
  const waas = useMemo(() => (credentials ? clientFor(credentials) : undefined), [credentials]);
  const route = useRoute();
  const signOut = () => {
    forgetCredentials();
    setCredentials(undefined);
  };
  return (
    <>
      <header class="top">
        <a class="brand" href={hrefOf({ view: 'jobs' })}>
          waas console
        </a>
        {credentials && (
          <div class="who">
            <span>
              client <code>{credentials.clientId}</code>
            </span>
            <button type="button" class="quiet" onClick={signOut}>
              Sign out
            </button>
          </div>
        )}
      </header>
      <main>
        {!waas ? (
          <SignIn
            onSignedIn={(signedIn) => {
              saveCredentials(signedIn);
              setCredentials(signedIn);
            }}
          />
        ) : route.view === 'job' ? (
          <JobView key={route.jobId} waas={waas} jobId={route.jobId} />
        ) : (
          <JobsList waas={waas} status={route.status} />
        )}
      </main>
    </>
  );
}

const root = document.getElementById('console');
if (root) render(<App />, root);
