// The demo page in headless Chromium, as a user on a phone would use it:
// pick an image, ask for a resize asynchronously, watch the 202 and the
// operation, and see the result; then type a bad `ops` and see the problem.
// With API_KEY (the app then has API keys on, for reads too): the first
// submission is refused with 401 and the page opens its key field; with
// the key typed in, the job runs and is followed by long-polling.
// Usage: node demo.mjs BASE_URL IMAGE_PATH SCREENSHOT_DIR [API_KEY]
// Exits non-zero, saying why, when the page does not behave.

import { launchChromium } from "./chromium.mjs";

const [base, image, out, apiKey] = process.argv.slice(2);
if (!base || !image || !out) {
  console.error("usage: node demo.mjs BASE_URL IMAGE_PATH SCREENSHOT_DIR");
  process.exit(2);
}

const browser = await launchChromium();

function check(condition, message) {
  if (!condition) throw new Error(message);
}

try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const offsite = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith("blob:")) offsite.push(request.url());
  });
  await page.goto(`${base}/`);

  await page.setInputFiles("#file", image);
  await page.fill("#ops", "resize(w=200),format(png)");
  await page.check("input[name=mode][value=async]");
  if (apiKey) {
    await page.click("#submit");
    await page.waitForSelector("#problem:not([hidden])", { timeout: 30_000 });
    const refused = JSON.parse(await page.textContent("#problem-body"));
    check(refused.status === 401 && refused.type === "urn:kiln:problem:unauthorized",
      `without a key the page showed ${JSON.stringify(refused)}`);
    check(await page.$eval("#key-box", (box) => box.open), "the key field was not opened by the 401");
    await page.fill("#api-key", apiKey);
    const curlWithKey = await page.textContent("#curl");
    check(curlWithKey.includes("$KILN_API_KEY") && !curlWithKey.includes(apiKey),
      `the curl command shows the key or no Authorization:\n${curlWithKey}`);
  }
  await page.click("#submit");
  await page.waitForSelector("#result-image[data-ready=true]", { timeout: 60_000 });
  const [width, height] = await page.$eval("#result-image", (img) => [img.naturalWidth, img.naturalHeight]);
  check(width === 200 && height === 150, `the result is ${width}×${height}, not 200×150`);
  const status = await page.textContent("#status");
  check(status.startsWith("202"), `the submission answered ${status}, not 202`);
  const headers = await page.textContent("#headers");
  check(/location: \/operations\//.test(headers), `no Location in the shown headers:\n${headers}`);
  const events = await page.textContent("#events");
  check(events.includes("succeeded"), `the operation was not seen succeeding:\n${events}`);
  if (apiKey) check(events.includes("poll: succeeded"), `with a key the page did not long-poll:\n${events}`);
  const curl = await page.textContent("#curl");
  check(curl.includes("Prefer: respond-async") && curl.includes("resize(w%3D200)"), `curl command:\n${curl}`);
  await page.screenshot({ path: `${out}/async-result.png`, fullPage: true });

  await page.fill("#ops", "sharpn");
  await page.click("#submit");
  await page.waitForSelector("#problem:not([hidden])", { timeout: 30_000 });
  const problem = JSON.parse(await page.textContent("#problem-body"));
  check(problem.status === 400 && problem.type === "urn:kiln:problem:bad-request",
    `the problem shown is ${JSON.stringify(problem)}`);
  await page.screenshot({ path: `${out}/problem.png`, fullPage: true });

  check(offsite.length === 0, `the page requested other hosts: ${offsite.join(", ")}`);
  console.log(`ok: ${apiKey ? "refused without a key, then with it " : ""}` +
    `async job shown ${width}×${height} with its events; the bad ops shown as ${problem.type}`);
} finally {
  await browser.close();
}
