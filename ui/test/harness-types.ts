// What the harness puts on `window` for the tests.
import type { Call } from './engine';

declare global {
  interface Window {
    __calls: Call[];
    __emit: (event: string, payload: unknown) => Promise<void>;
    /** Commands that fail, with the engine's message. */
    __fail: Record<string, string>;
  }
}

export {};
