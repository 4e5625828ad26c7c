import type { RunSummary } from '../api';

/** Runs that have a checkpoint (step > 0), optionally of one kind. */
export function RunPicker({
  runs,
  value,
  onChange,
  label,
}: {
  runs: RunSummary[];
  value: string;
  onChange: (run: string) => void;
  label: string;
}) {
  return (
    <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)}>
      {runs.map((r) => (
        <option key={r.name} value={r.name}>
          {r.name} ({r.kind}, step {r.step})
        </option>
      ))}
    </select>
  );
}

export const trained = (runs: RunSummary[]) => runs.filter((r) => r.step > 0);
