/**
 * Live refresh by polling the v1 API: `load` again every `refreshMs` while the tab is visible and
 * `more` says something may still change; paused while the tab is hidden (no requests from a
 * tab nobody looks at), and at once again when it is shown.
 */
import { useEffect, useState } from 'preact/hooks';

/** How often a view loads again: every view refreshes on the same beat. */
const refreshMs = 3_000;

export interface Polled<T> {
  value?: T;
  /** The last load's failure, while the last value stays shown. */
  error?: unknown;
  /** When the value was loaded. */
  at?: Date;
  /** The tab is hidden: polling waits. */
  paused: boolean;
  /** Loads again now (after a cancel, say). */
  refresh(): void;
}

function useVisible(): boolean {
  const [visible, setVisible] = useState(document.visibilityState === 'visible');
  useEffect(() => {
    const changed = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', changed);
    return () => document.removeEventListener('visibilitychange', changed);
  }, []);
  return visible;
}

/** `key` names what is loaded: when it changes, the old value is dropped and loading starts anew. */
export function usePoll<T>(key: string, load: () => Promise<T>, more: (value: T) => boolean = () => true): Polled<T> {
  const visible = useVisible();
  const [state, setState] = useState<{ key: string; value?: T; error?: unknown; at?: Date }>({ key });
  const [asked, setAsked] = useState(0);
  useEffect(() => {
    if (!visible) return undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      let again = true;
      try {
        const value = await load();
        if (stopped) return;
        setState({ key, value, at: new Date() });
        again = more(value);
      } catch (error) {
        if (stopped) return;
        setState((last) => (last.key === key ? { ...last, error } : { key, error }));
      }
      if (again && !stopped) timer = setTimeout(() => void run(), refreshMs);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // `load` and `more` are read anew with each key: a change of key is a change of what they do.
  }, [key, visible, asked]);
  const current = state.key === key ? state : { key };
  return { ...current, paused: !visible, refresh: () => setAsked((n) => n + 1) };
}
