// The desktop tests' harness: the real confab-desktop binary under Xvfb and a D-Bus session,
// driven over WebDriver by tauri-driver and Debian's WebKitWebDriver, as a person would use it.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import {
  ROOT,
  SCREENSHOTS,
  WAIT_MS,
  bin,
  ensureBuilt,
  joinAs,
  launchBrowser,
  newPage,
  notesMatch,
  screenLuma,
  startXvfb,
  tempDir,
  waitConnected,
} from "../browser/harness.mjs";

/** The app under test: the one cargo built, or another (`make bench-desktop` runs the one in the
 * `.deb`). */
const appBinary = () => process.env.CONFAB_DESKTOP_BIN ?? bin("confab-desktop");
const TAURI_DRIVER = process.env.TAURI_DRIVER ?? join(process.env.HOME ?? "/root", ".cargo/bin/tauri-driver");

/** `count` distinct TCP ports nobody listens on now (held together until all are known). */
async function freePorts(count) {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(server));
    })),
  );
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the app runs with: `home` its own (keyring, webview storage, settings, data), on the
 * X server `display`. */
export function appEnvironment(home, display) {
  return {
    ...process.env,
    HOME: home,
    DISPLAY: display,
    // Without it WebKitGTK draws a blank window under Xvfb. The app sets it itself on a machine
    // without a GPU; this is for one with a GPU, whose tests still run under Xvfb.
    WEBKIT_DISABLE_COMPOSITING_MODE: "1",
    // No accessibility bus to start for every window.
    NO_AT_BRIDGE: "1",
    CONFAB_DATA_DIR: join(home, "confab"),
  };
}

/** A private D-Bus session for the app (see scripts/test-session-bus.conf): the command before
 * the one to run in it. */
export const SESSION_BUS = ["dbus-run-session", `--config-file=${join(ROOT, "scripts/test-session-bus.conf")}`, "--"];

/** Starts GNOME Keyring in a D-Bus session, unlocked, as a desktop login does, and waits until
 * it answers (a shell command). */
export const UNLOCK_KEYRING = `'${join(ROOT, "scripts/unlock-keyring.sh")}' confab`;

/** Starts the desktop app on its own X server, D-Bus session and data directory; returns an
 * `App` to drive it. Everything is stopped after the test. */
export async function launchApp(t, { width = 1280, height = 800, env = {}, home = null } = {}) {
  if (!process.env.CONFAB_DESKTOP_BIN) ensureBuilt();
  if (!existsSync(TAURI_DRIVER)) throw new Error(`no tauri-driver at ${TAURI_DRIVER}: run scripts/setup.sh`);
  const xvfb = await startXvfb(t, width, height);
  const [port, nativePort] = await freePorts(2);
  // A fresh home unless one is given: the same user starting the app again.
  home ??= tempDir(t, "desktop-home");
  const appEnv = { ...appEnvironment(home, xvfb.display), CONFAB_DOWNLOAD_DIR: tempDir(t, "desktop-downloads"), ...env };
  // A session of its own: the bus (for one instance and for the keyring) and an unlocked GNOME
  // Keyring, as a desktop login gives. Its address is written down, so a second launch can find
  // the first app on it.
  const busFile = join(home, "bus-address");
  const session = [
    'printf %s "$DBUS_SESSION_BUS_ADDRESS" > "$0"',
    // It leaves the process group, and quits when its bus goes away.
    UNLOCK_KEYRING,
    'exec "$1" --port "$2" --native-port "$3"',
  ].join("; ");
  const [bus, ...busArgs] = SESSION_BUS;
  const driver = spawn(bus, [...busArgs, "sh", "-c", session, busFile, TAURI_DRIVER, String(port), String(nativePort)], {
    env: appEnv,
    stdio: ["ignore", "ignore", "pipe"],
    // Its own process group: the bus, the keyring and the app all stop with it.
    detached: true,
  });
  let log = "";
  driver.stderr.on("data", (chunk) => (log = (log + chunk).slice(-20_000)));
  const driverGone = new Promise((resolve) => driver.once("exit", resolve));
  const stopGroup = (signal) => {
    try {
      process.kill(-driver.pid, signal);
    } catch {
      // Gone already.
    }
  };
  xvfb.windows.push(async () => {
    stopGroup("SIGTERM");
    await Promise.race([driverGone, delay(5000)]);
    stopGroup("SIGKILL");
  });
  const app = new App(`http://127.0.0.1:${port}`, xvfb, { width, height }, () => log);
  await app.start();
  app.driverPid = driver.pid;
  app.home = home;
  app.downloadDir = appEnv.CONFAB_DOWNLOAD_DIR;
  app.env = { ...appEnv, DBUS_SESSION_BUS_ADDRESS: readFileSync(busFile, "utf8") };
  xvfb.windows.unshift(() => app.close());
  return app;
}

export class App {
  constructor(url, xvfb, size, log) {
    this.url = url;
    this.xvfb = xvfb;
    this.size = size;
    this.log = log;
    this.session = null;
  }

  async request(method, path, body) {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const reply = await response.json();
    if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(reply.value)}\n${this.log()}`);
    return reply.value;
  }

  async start() {
    const capabilities = { alwaysMatch: { "tauri:options": { application: appBinary() } } };
    const deadline = Date.now() + WAIT_MS;
    // tauri-driver takes a moment to listen; any other failure is the app's.
    for (;;) {
      try {
        const { sessionId } = await this.request("POST", "/session", { capabilities });
        this.session = `/session/${sessionId}`;
        return;
      } catch (e) {
        if (e?.cause?.code !== "ECONNREFUSED" || Date.now() > deadline) throw e;
        await delay(200);
      }
    }
  }

  async close() {
    if (!this.session) return;
    const session = this.session;
    this.session = null;
    await this.request("DELETE", session).catch(() => undefined);
  }

  /** Runs `fn` (a function, serialised) in the window with `args`; returns its result. */
  evaluate(fn, ...args) {
    return this.request("POST", `${this.session}/execute/sync`, { script: `return (${fn}).apply(null, arguments);`, args });
  }

  /** Waits until `fn` (run in the window) returns something truthy; returns it. */
  async waitFor(fn, what, ...args) {
    const deadline = Date.now() + WAIT_MS;
    let last;
    for (;;) {
      last = await this.evaluate(fn, ...args);
      if (last) return last;
      if (Date.now() > deadline) {
        const shown = await this.evaluate(() => document.body.innerText).catch((e) => `(unreadable: ${e})`);
        throw new Error(`the desktop app never showed ${what}; it shows: ${shown.slice(0, 500)}`);
      }
      await delay(100);
    }
  }

  async element(css) {
    await this.waitFor((css) => document.querySelector(css) !== null, `an element ${css}`, css);
    const found = await this.request("POST", `${this.session}/element`, { using: "css selector", value: css });
    return Object.values(found)[0];
  }

  async click(css) {
    await this.request("POST", `${this.session}/element/${await this.element(css)}/click`, {});
  }

  /** Types `text` into the element, key by key, as a keyboard would. */
  async type(css, text) {
    await this.request("POST", `${this.session}/element/${await this.element(css)}/value`, { text });
  }

  /** Launches the app a second time with `args`, on the same display and session bus, as a
   * click on a link would; resolves with its exit code. */
  launchAgain(args) {
    const child = spawn(appBinary(), args, { env: this.env, stdio: ["ignore", "ignore", "pipe"] });
    let errors = "";
    child.stderr.on("data", (chunk) => (errors += chunk));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`a second launch did not exit: ${errors}`));
      }, WAIT_MS);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, errors });
      });
    });
  }

  /** Starts a new meeting from the start page as `name`; answers its invite link, as "Copy
   * invite link" hands it over. */
  async newMeeting(name) {
    await this.type("#name", name);
    await this.clickButton("New meeting");
    await this.element('.cm-content[aria-label="Notes"]');
    await this.evaluate(() => {
      navigator.clipboard.writeText = async (text) => void (window.__copied = text);
    });
    await this.clickButton("Copy invite link");
    return this.waitFor(() => window.__copied, "the invite link copied");
  }

  /** Joins the meeting at `link` from the start page as `name`. */
  async joinByLink(name, link) {
    await this.type("#name", name);
    await this.type("#link", link);
    await this.clickButton("Join");
    await this.element('.cm-content[aria-label="Notes"]');
  }

  /** Clicks the enabled button labelled `label`, once there is one. */
  async clickButton(label) {
    await this.waitFor(
      (label) => {
        for (const marked of document.querySelectorAll("[data-test-target]")) marked.removeAttribute("data-test-target");
        const button = [...document.querySelectorAll("button")].find((b) => b.textContent.trim() === label && !b.disabled);
        button?.setAttribute("data-test-target", "");
        return button !== undefined;
      },
      `a button "${label}"`,
      label,
    );
    await this.click("[data-test-target]");
  }

  /** The luma of what the display shows inside the element `css` (read by ImageMagick, not by
   * the app), row by row; the window fills the display from its top left corner. */
  async lumaOf(css) {
    const box = await this.waitFor(
      (css) => {
        const rect = document.querySelector(css)?.getBoundingClientRect();
        return rect && rect.width > 0 ? { x: Math.round(rect.x), y: Math.round(rect.y), w: Math.floor(rect.width), h: Math.floor(rect.height) } : null;
      },
      `${css} on screen`,
      css,
    );
    const { width, height } = this.size;
    const screen = screenLuma(this.xvfb.display, width, height);
    const luma = new Float64Array(box.w * box.h);
    for (let row = 0; row < box.h; row++) luma.set(screen.subarray((box.y + row) * width + box.x, (box.y + row) * width + box.x + box.w), row * box.w);
    return luma;
  }

  /** The whole X display, as a person would see it, saved under tests/artifacts/screenshots. */
  screenshot(name) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const result = spawnSync("import", ["-window", "root", join(SCREENSHOTS, `${name}.png`)], {
      env: { ...process.env, DISPLAY: this.xvfb.display },
    });
    if (result.status !== 0) throw new Error(`import failed: ${result.stderr}`);
  }
}

/** The app joins the meeting at `link` as "Desk" and a browser joins it as "Browsa"; answers
 * both once the browser shows the app connected. */
export async function appAndBrowserIn(t, link) {
  const app = await launchApp(t);
  await app.joinByLink("Desk", link);
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browsa");
  await waitConnected(page, "Desk");
  return { app, page };
}

/** The notes as the app's editor shows them (others' carets aside). */
export function appNotes(app) {
  return app.evaluate(notesMatch, {});
}
