import { useEffect, type Dispatch, type SetStateAction } from 'react';
import { api, message, onEngineEvent, onJobEnded, type EngineEvent, type JobInfo } from '../api';

/** A job the page started and follows: its id, and how it ended once it has. */
export type Followed = { id: number; ended?: JobInfo };

/** Keeps the followed job in `setJob` current: `step` folds each of its engine events in;
 * when it ends, `ended` is set and `done` runs (to reload what the job changed). `step` and
 * `done` must be stable (module-level or memoised). */
export function useFollowJob<J extends Followed>(
  setJob: Dispatch<SetStateAction<J | null>>,
  step: (job: J, e: EngineEvent) => J,
  done?: (info: JobInfo) => void,
) {
  useEffect(() => {
    const off = [
      onEngineEvent((e) => setJob((j) => (j && j.id === e.job ? step(j, e) : j))),
      onJobEnded((info) =>
        setJob((j) => {
          if (!j || j.id !== info.id) return j;
          done?.(info);
          return { ...j, ended: info };
        }),
      ),
    ];
    return () => off.forEach((p) => p.then((f) => f()));
  }, [setJob, step, done]);
}

/** Asks the followed job to stop; enabled while it runs. */
export function CancelJob({ job, onError }: { job: Followed | null; onError: (e: string) => void }) {
  return (
    <button disabled={!job || !!job.ended} onClick={() => job && api.cancelJob(job.id).catch((e) => onError(message(e)))}>
      Cancel
    </button>
  );
}
