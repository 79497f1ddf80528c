// A page on another origin calling Kiln from headless Chromium, as a web
// app would: the browser itself sends the preflight, checks the answer and
// decides what the page may read. This script serves the pages itself, on
// loopback, at two origins other than Kiln's (http://127.0.0.1:<port>):
// ALLOWED_ORIGIN, which the app lists in cors_allowed_origins, and
// OTHER_ORIGIN, which it does not. (A page served by Playwright's request
// interception has no address, so Chromium counts it as public and refuses
// it any request to loopback, whatever the CORS answer.)
// Usage: node cors.mjs BASE_URL ALLOWED_ORIGIN OTHER_ORIGIN IMAGE_PATH
// Prints one line and exits 0 when the browser saw what it should.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { launchChromium } from "./chromium.mjs";

const [base, allowedOrigin, otherOrigin, imagePath] = process.argv.slice(2);
if (!base || !allowedOrigin || !otherOrigin || !imagePath) {
  console.error("usage: node cors.mjs BASE_URL ALLOWED_ORIGIN OTHER_ORIGIN IMAGE_PATH");
  process.exit(2);
}
const image = [...(await readFile(imagePath))];

const browser = await launchChromium();

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// A blank page at `origin` (http://127.0.0.1:<port>), served from here.
const servers = [];
async function pageAt(origin) {
  const server = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<!doctype html><title>app</title>");
  });
  servers.push(server);
  await new Promise((listening) => server.listen(Number(new URL(origin).port), "127.0.0.1", listening));
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  return page;
}

// In the page: submit asynchronously with the headers a client sends
// (each needs the preflight's permission), read what the protocol says,
// follow the operation to its end, fetch the image, delete the job.
async function useTheApi({ base, image }) {
  const seen = {};
  const submitted = await fetch(`${base}/images?ops=resize(w=32),format(png)`, {
    method: "POST",
    headers: {
      "Content-Type": "image/png",
      Prefer: "respond-async",
      "Idempotency-Key": `"cors-${Date.now()}"`,
    },
    body: new Uint8Array(image),
  });
  seen.submitStatus = submitted.status;
  seen.location = submitted.headers.get("location");
  seen.preferenceApplied = submitted.headers.get("preference-applied");
  seen.retryAfter = submitted.headers.get("retry-after");
  let operation;
  for (let i = 0; i < 60; i++) {
    const read = await fetch(`${base}${seen.location}`, { headers: { Prefer: "wait=5" } });
    operation = await read.json();
    seen.etag = read.headers.get("etag");
    if (["succeeded", "failed", "canceled"].includes(operation.status)) break;
  }
  seen.finalStatus = operation.status;
  const result = await fetch(`${base}${operation.resourceLocation}`);
  seen.imageType = result.headers.get("content-type");
  seen.imageBytes = (await result.arrayBuffer()).byteLength;
  const deleted = await fetch(`${base}${operation.resourceLocation}`, { method: "DELETE" });
  seen.deleteStatus = deleted.status;
  return seen;
}

try {
  const allowed = await pageAt(allowedOrigin);
  const seen = await allowed.evaluate(useTheApi, { base, image }).catch((e) => {
    throw new Error(`the allowed page could not use the API: ${e.message}`);
  });
  check(seen.submitStatus === 202, `submission answered ${seen.submitStatus}`);
  check(/^\/operations\//.test(seen.location ?? ""), `Location not readable: ${seen.location}`);
  check(seen.preferenceApplied === "respond-async", `Preference-Applied not readable: ${seen.preferenceApplied}`);
  check(seen.retryAfter !== null, "Retry-After not readable");
  check(seen.finalStatus === "succeeded", `the operation ended ${seen.finalStatus}`);
  check(seen.etag !== null, "the finished operation's ETag not readable");
  check(seen.imageType === "image/png" && seen.imageBytes > 0, `image: ${seen.imageType}, ${seen.imageBytes} B`);
  check(seen.deleteStatus === 204, `DELETE answered ${seen.deleteStatus}`);

  // The other origin: the browser's preflight is refused, so the request
  // itself is never sent and the page only sees a network error.
  const other = await pageAt(otherOrigin);
  const blocked = await other.evaluate(async (base) => {
    try {
      await fetch(`${base}/images?ops=resize(w=32)`, {
        method: "POST",
        headers: { "Content-Type": "image/png", Prefer: "respond-async" },
        body: new Uint8Array([137, 80, 78, 71]),
      });
      return "sent";
    } catch (e) {
      return `blocked: ${e.name}`;
    }
  }, base);
  check(blocked === "blocked: TypeError", `the other origin's submission was ${blocked}`);
  // A simple GET is sent without a preflight, but the page may not read it.
  const unreadable = await other.evaluate(async (url) => {
    try {
      await fetch(url);
      return "readable";
    } catch (e) {
      return `blocked: ${e.name}`;
    }
  }, `${base}${seen.location}`);
  check(unreadable === "blocked: TypeError", `the other origin's read was ${unreadable}`);

  console.log(`ok: ${allowedOrigin} submitted, read Location, Preference-Applied, Retry-After and ETag, ` +
    `fetched and deleted the image; ${otherOrigin} was blocked at preflight and could not read a status`);
} finally {
  await browser.close();
  for (const server of servers) server.close();
}
