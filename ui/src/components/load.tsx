import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { message } from '../api';

export type Loaded<T> =
  | { state: 'loading' }
  | { state: 'error'; error: string }
  | { state: 'ready'; value: T };

/** Runs `load` when `deps` change; `reload` runs it again (after an edit, say). With `keep`,
 * a value already shown stays while the next one loads (no flash, no re-mounted screen). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], keep = false) {
  const [result, setResult] = useState<Loaded<T>>({ state: 'loading' });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setResult((r) => (keep && r.state === 'ready' ? r : { state: 'loading' }));
    load().then(
      (value) => live && setResult({ state: 'ready', value }),
      (e) => live && setResult({ state: 'error', error: message(e) }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return [result, reload] as const;
}

export const Loading = ({ what }: { what: string }) => (
  <div className="state loading" role="status">
    Loading {what}…
  </div>
);

export const ErrorBox = ({ error }: { error: string }) => (
  <div className="state error" role="alert">
    {error}
  </div>
);

export const Empty = ({ children }: { children: ReactNode }) => <div className="state empty">{children}</div>;

/** The loading / error / ready states of one load in one place. */
export function Show<T>({
  what,
  result,
  children,
}: {
  what: string;
  result: Loaded<T>;
  children: (value: T) => ReactNode;
}) {
  if (result.state === 'loading') return <Loading what={what} />;
  if (result.state === 'error') return <ErrorBox error={result.error} />;
  return <>{children(result.value)}</>;
}
