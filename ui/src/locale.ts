// WebKitGTK reports the POSIX locale as navigator.language ("C" when LANG is unset or C, as on
// many servers and CI machines); Intl rejects it, and uPlot builds a number format from it as it
// loads. Fall back to a tag Intl accepts before anything else runs (main.tsx imports this first).
try {
  new Intl.NumberFormat(navigator.language);
} catch {
  Object.defineProperty(navigator, 'language', { value: 'en-US', configurable: true });
}
