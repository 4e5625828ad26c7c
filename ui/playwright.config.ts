import { defineConfig } from '@playwright/test';

// Debian's Chromium, no browser download; the page comes from Vite's dev server.
export default defineConfig({
  testDir: 'tests',
  timeout: 30_000,
  workers: 2,
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:5173',
    browserName: 'chromium',
    viewport: { width: 1280, height: 820 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: {
    command: 'npx vite --host 127.0.0.1 --port 5173 --strictPort',
    url: 'http://127.0.0.1:5173/test/harness.html',
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
