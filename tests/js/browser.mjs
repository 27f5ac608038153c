// Headless Chromium as every browser test here launches it: Debian's build
// (`PARLOR_CHROMIUM`, default /usr/bin/chromium) through playwright-core,
// with Google's background services off — without these flags Chromium
// keeps dialling them, and this closed network refuses.

import { chromium } from "playwright-core";

const QUIET = [
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Chromium with the quiet flags and `extraArgs`. */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.PARLOR_CHROMIUM || "/usr/bin/chromium",
    args: [...QUIET, ...extraArgs],
  });
}

/** Prints one step of a test, for the Rust runner's log. */
export const step = (what) => console.log(`· ${what}`);
