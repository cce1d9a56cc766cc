// What the console's browser tests share: the whole broker in-process (edge, persister, dispatcher and api, each
// through its start()) and a headless Chromium (the system's, driven by playwright-core) on an empty profile.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type ApiHandle, start as startApi } from '#api';
import { type DispatcherHandle, start as startDispatcher } from '#dispatcher';
import { type EdgeHandle, start as startEdge } from '#edge';
import { type PersisterHandle, start as startPersister } from '#persister';
import { createTestContext, type TestContext } from '#test-support';

export const API_KEY = 'test-key';
export const CHROMIUM_PATH = '/usr/bin/chromium';
/** Where the screenshots of the README go. */
const DOCS_DIR = new URL('../../docs/', import.meta.url);

// The test machine has no network: without these, Chromium keeps trying to reach its update and sync services.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * What the tests read of the page inside page.evaluate, typed here because the project compiles without the DOM
 * library. A callback casts `globalThis` to it in place: the callback runs in the browser, where no import exists.
 */
export interface PageWindow {
  document: {
    cookie: string;
    activeElement: { tagName: string; id: string; textContent: string | null } | null;
    documentElement: { outerHTML: string; scrollWidth: number };
    querySelector(selector: string): { textContent: string | null } | null;
  };
  localStorage: { length: number };
  sessionStorage: { length: number };
  innerWidth: number;
  /** Set by a test; gone after a reload. */
  consoleTestMark?: string;
}

export interface Broker {
  ctx: TestContext;
  edge: EdgeHandle;
  persister: PersisterHandle;
  dispatcher: DispatcherHandle;
  api: ApiHandle;
  /** http://127.0.0.1:<port>/console */
  consoleUrl: string;
  apiUrl: string;
  wsUrl: string;
  stop(): Promise<void>;
}

export async function startBroker(): Promise<Broker> {
  const ctx = await createTestContext();
  const edge = await startEdge(ctx.config, { log: ctx.log });
  const persister = await startPersister(ctx.config, { log: ctx.log });
  const dispatcher = await startDispatcher(ctx.config, { log: ctx.log });
  const api = await startApi(ctx.config, { log: ctx.log });
  const apiUrl = `http://127.0.0.1:${api.port}`;
  return {
    ctx,
    edge,
    persister,
    dispatcher,
    api,
    apiUrl,
    consoleUrl: `${apiUrl}/console`,
    wsUrl: `ws://127.0.0.1:${edge.port}/ws`,
    async stop() {
      for (const service of [api, edge, dispatcher, persister]) await service.stop();
      await ctx.cleanup();
    },
  };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** A fresh Chromium with a new empty profile; tablet-sized unless told otherwise. */
export async function openBrowser(viewport = { width: 1024, height: 768 }): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in through the form, with the keyboard alone. */
export async function signIn(page: Page, consoleUrl: string, key = API_KEY): Promise<void> {
  await page.goto(consoleUrl);
  await page.locator('#api-key').waitFor();
  await page.keyboard.type(key); // the key field has focus when the form appears
  await page.keyboard.press('Enter');
}

/** Waits until the element holds exactly this text (the console polls every second). */
export async function waitForText(
  page: Page,
  selector: string,
  text: string,
  timeoutMs = 10_000,
): Promise<void> {
  await page.waitForFunction(
    ([sel, expected]) =>
      (globalThis as unknown as PageWindow).document.querySelector(sel as string)?.textContent?.trim() ===
      expected,
    [selector, text],
    { timeout: timeoutMs },
  );
}

/** Saves docs/console-<name>.png for the README. */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  await mkdir(DOCS_DIR, { recursive: true });
  await page.screenshot({ path: new URL(`console-${name}.png`, DOCS_DIR).pathname, fullPage: true });
}

/** Whether the page fits its viewport's width (nothing to scroll sideways). */
export function fitsWidth(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const w = globalThis as unknown as PageWindow;
    return w.document.documentElement.scrollWidth <= w.innerWidth;
  });
}
