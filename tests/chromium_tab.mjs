// One headless Chromium tab (Debian's /usr/bin/chromium, driven by the repository's
// playwright-core) running example.html against the URL in argv[2], for tests/test_client.py:
// it joins room "mixed" as "tab", prints "ready", waits for the Python client's message,
// answers it, waits to see its own answer, prints "done" and exits.
import { createRequire } from "node:module";

const require = createRequire(new URL("../js-client/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const WAIT = { timeout: 15_000 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  const line = (text) => page.locator("#messages li", { hasText: text }).last().waitFor(WAIT);
  await page.goto(process.argv[2]);
  await page.locator('#status[data-state="open"]').waitFor(WAIT);
  await page.fill("#name", "tab");
  await page.fill("#room", "mixed");
  await page.click("#join");
  await line("you joined #mixed");
  console.log("ready");
  await line("hello from python");
  await page.fill("#text", "hello from chromium");
  await page.press("#text", "Enter");
  await line("hello from chromium");
  console.log("done");
} finally {
  await browser.close();
}
