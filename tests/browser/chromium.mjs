// Debian's Chromium, headless, for the browser tests (no browser download).
import { chromium } from "playwright-core";

// This machine has no network but loopback: without these flags Chromium
// keeps trying to reach Google's hosts.
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}
