import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startApi } from '#api';
import { loadConfig } from '#runtime';
import { type Broker, type Browser, openBrowser, type PageWindow, signIn, startBroker } from './harness';

describe('when someone opens the console', () => {
  let broker: Broker;
  let browser: Browser;

  // Chromium starts in seconds, or tens of seconds on a loaded machine.
  beforeAll(async () => {
    broker = await startBroker();
    browser = await openBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await broker?.stop();
  });

  it('refuses a wrong key and stays signed out', async () => {
    const { page } = browser;
    await signIn(page, broker.consoleUrl, 'not-the-key');
    await page.locator('#sign-in-error', { hasText: 'That key was refused.' }).waitFor();
    expect(await browser.context.cookies()).toEqual([]);
    expect(await page.locator('#sign-out').isHidden()).toBe(true);
    expect(await page.locator('#api-key').inputValue()).toBe(''); // the key does not stay in the page
  });

  it('signs in with the keyboard alone, keeps only an HttpOnly SameSite=Strict cookie, and signs out', async () => {
    const { page } = browser;
    await signIn(page, broker.consoleUrl);
    await page.locator('h1', { hasText: 'Shops' }).waitFor();

    const [cookie, ...others] = await browser.context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({
      name: 'console_session',
      httpOnly: true,
      sameSite: 'Strict',
      path: '/console',
    });
    expect(cookie!.value).not.toContain('test-key');
    const stored = await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      return {
        cookie: w.document.cookie,
        local: w.localStorage.length,
        session: w.sessionStorage.length,
        html: w.document.documentElement.outerHTML,
      };
    });
    expect(stored).toMatchObject({ cookie: '', local: 0, session: 0 });
    expect(stored.html).not.toContain('test-key');

    // Focus lands on the view's heading; the navigation is one Shift+Tab past Sign out, and Enter follows it.
    const focused = () =>
      page.evaluate(() => {
        const active = (globalThis as unknown as PageWindow).document.activeElement;
        return `${active?.tagName} ${active?.textContent}`;
      });
    expect(await focused()).toBe('H1 Shops');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).document.activeElement?.id)).toBe(
      'shop-search',
    );
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).toBe('BUTTON Sign out');
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).toBe('A Operations');
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: 'Operations' }).waitFor();
    expect(await focused()).toBe('H1 Operations');

    const session = `console_session=${cookie!.value}`;
    expect((await fetch(`${broker.consoleUrl}/api/overview`, { headers: { cookie: session } })).status).toBe(
      200,
    );
    await page.locator('#sign-out').click();
    await page.locator('#api-key').waitFor();
    expect(await browser.context.cookies()).toEqual([]);
    // Signing out ends the session on the server, not only in this browser.
    expect((await fetch(`${broker.consoleUrl}/api/overview`, { headers: { cookie: session } })).status).toBe(
      401,
    );
  });

  it('answers no data request without a session', async () => {
    const paths = [
      '/overview',
      '/operations',
      '/connections',
      '/shops/shop-1/devices',
      '/shops/shop-1/messages?state=all',
      '/shops/shop-1/timeline',
      '/shops/shop-1/main-online',
      '/session',
      '/no-such-thing',
    ];
    const forged = 'console_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    for (const path of paths) {
      const attempts: Array<Record<string, string>> = [
        {},
        { cookie: forged },
        { authorization: 'Bearer test-key' },
      ];
      for (const headers of attempts) {
        const answer = await fetch(`${broker.consoleUrl}/api${path}`, { headers });
        expect({ path, headers, status: answer.status }).toEqual({ path, headers, status: 401 });
        expect(await answer.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
      }
    }
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/shops/shop-1/devices', { client_id: 'pos-9', type: 'main' }],
      ['DELETE', '/shops/shop-1/devices/pos-9', undefined],
      ['POST', '/messages/01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1/handle', { status: 1 }],
      ['POST', '/connections/c_1/disconnect', undefined],
    ];
    for (const [method, path, body] of writes) {
      const answer = await fetch(`${broker.consoleUrl}/api${path}`, {
        method,
        headers: { 'content-type': 'application/json', 'x-console-request': '1' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect({ path, status: answer.status }).toEqual({ path, status: 401 });
    }
    const shard = broker.ctx.keys.shardOf('shop-1');
    expect(await broker.ctx.redis.xlen(broker.ctx.keys.stream(shard))).toBe(0);
  });

  it('takes a write of a signed-in session only with its X-Console-Request header', async () => {
    const signedIn = await fetch(`${broker.consoleUrl}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-console-request': '1' },
      body: JSON.stringify({ key: 'test-key' }),
    });
    expect(signedIn.status).toBe(204);
    const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
    const register = (headers: Record<string, string>) =>
      fetch(`${broker.consoleUrl}/api/shops/shop-2/devices`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ client_id: 'pos-1', type: 'main' }),
      });
    expect((await register({})).status).toBe(400);
    expect((await register({ 'x-console-request': '1' })).status).toBe(201);
  });

  it('shares a session between api instances, and ends it once its key is no longer configured', async () => {
    const signedIn = await fetch(`${broker.consoleUrl}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-console-request': '1' },
      body: JSON.stringify({ key: 'test-key' }),
    });
    const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
    // Two more instances on the same Redis, as behind a load balancer: one still takes the key, one rotated it out.
    const [sameKeys, rotated] = await Promise.all(
      ['test-key,next-key', 'next-key'].map((keys) =>
        startApi(loadConfig({ ...broker.ctx.env, API_KEYS: keys }).config, { log: broker.ctx.log }),
      ),
    );
    try {
      const overviewOn = (port: number) =>
        fetch(`http://127.0.0.1:${port}/console/api/overview`, { headers: { cookie } }).then((r) => r.status);
      expect(await overviewOn(sameKeys!.port)).toBe(200);
      expect(await overviewOn(rotated!.port)).toBe(401);
      // The rotated instance ended the session for every instance.
      expect(await overviewOn(sameKeys!.port)).toBe(401);
      expect(await overviewOn(broker.api.port)).toBe(401);
    } finally {
      await Promise.all([sameKeys?.stop(), rotated?.stop()]);
    }
  });
});
