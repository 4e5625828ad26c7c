import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The window loads the built files (dist/); `npm run dev` serves the same page, and the
// Playwright tests load test/harness.html from it with the engine replaced by mockIPC.
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  server: { port: 5173, strictPort: true, host: '127.0.0.1' },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
});
