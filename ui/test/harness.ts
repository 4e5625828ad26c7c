// The page with the engine replaced by mockIPC: `?scenario=full|empty|error` picks the data.
// Tests read `window.__calls` (every command and its arguments) and push engine events with
// `window.__emit(name, payload)`.
import { mockConvertFileSrc, mockIPC, mockWindows } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { engine } from './engine';
import './harness-types';

const scenario = new URLSearchParams(location.search).get('scenario') ?? 'full';
window.__calls = [];
window.__fail = {};
mockConvertFileSrc('linux');
mockWindows('main');
mockIPC(
  (cmd, args) => {
    window.__calls.push({ cmd, args: (args ?? {}) as Record<string, unknown> });
    if (window.__fail[cmd]) throw window.__fail[cmd];
    return engine(scenario, cmd, (args ?? {}) as Record<string, unknown>);
  },
  { shouldMockEvents: true },
);
window.__emit = (event, payload) => emit(event, payload);
await import('../src/main');
