import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '#eventlog';
import { newEventId } from '#events';
import { loginRaw, type RawSocket, registerDevice } from '#test-support';
import {
  API_KEY,
  type Broker,
  type Browser,
  fitsWidth,
  openBrowser,
  type PageWindow,
  saveScreenshot,
  signIn,
  startBroker,
  waitForText,
} from './harness';

describe('when the back office follows a shop in the console', () => {
  let broker: Broker;
  let browser: Browser;
  let cashier: RawSocket;
  let waiter: RawSocket;
  let firstMessageId: string;

  const stateOf = (messageId: string) => `#messages li[data-message-id="${messageId}"] [data-field="state"]`;
  const deviceStateOf = (clientId: string) =>
    `#devices tr[data-client-id="${clientId}"] [data-field="state"]`;
  const notify = async (reqId: string, tableId: number, type: string) => {
    waiter.send({
      op: 'notify',
      req_id: reqId,
      table_id: tableId,
      type,
      status: 0,
      data: { dish: 'noodles' },
    });
    const reply = await waiter.next((frame) => frame.op === 'notify' && frame.req_id === reqId);
    expect(reply).toMatchObject({ code: 0 });
    return `${(reply.data as { event_id: string }).event_id}.pos-1`;
  };
  const v1 = async (path: string) => {
    const answer = await fetch(`${broker.apiUrl}/v1${path}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    return (await answer.json()) as Record<string, unknown>;
  };

  // Chromium starts in seconds, or tens of seconds on a loaded machine.
  beforeAll(async () => {
    broker = await startBroker();
    browser = await openBrowser({ width: 1024, height: 768 });
    await signIn(browser.page, broker.consoleUrl);
    await browser.page.locator('h1', { hasText: 'Shops' }).waitFor();
  }, 120_000);
  afterAll(async () => {
    for (const socket of [cashier, waiter]) socket?.ws.close();
    await browser?.close();
    await broker?.stop();
  });

  it('registers a device and shows its token once, ready to copy', async () => {
    const { page } = browser;
    await page.goto(`${broker.consoleUrl}#/shops/shop-1`);
    await page.locator('#devices', { hasText: 'No devices registered.' }).waitFor();
    await page.locator('#register-client-id').fill('pos-1');
    await page.locator('#register-type').selectOption('main');
    await page.locator('#register-client-id').press('Enter');

    const token = await page.locator('#new-token').inputValue();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    await waitForText(page, deviceStateOf('pos-1'), 'offline');
    cashier = await loginRaw(broker.wsUrl, token);
    await waitForText(page, deviceStateOf('pos-1'), 'online');
    await page.locator('#devices tr[data-client-id="pos-1"]', { hasText: broker.edge.edgeId }).waitFor();

    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.locator('#new-token').count()).toBe(0);
    expect(await page.content()).not.toContain(token);
  });

  it("shows a waiter's notify as pending, then delivered once the cashier acks, without a reload", async () => {
    const { page } = browser;
    await page.evaluate(() => {
      (globalThis as unknown as PageWindow).consoleTestMark = 'no reload';
    });
    waiter = await loginRaw(broker.wsUrl, await registerDevice(broker.ctx, 'shop-1', 'waiter-1', 'sub'));
    firstMessageId = await notify('r-1', 7, 'add_dish');
    const pushed = await cashier.next((frame) => frame.op === 'message');
    expect(pushed.id).toBe(firstMessageId);

    await waitForText(page, stateOf(firstMessageId), 'pending');
    // Pushed, not acked: the console shows the inbox's live push count, not the projection's 0.
    await page.locator(`#messages li[data-message-id="${firstMessageId}"]`, { hasText: / so far/ }).waitFor();
    cashier.send({ op: 'ack', id: firstMessageId });
    await waitForText(page, stateOf(firstMessageId), 'delivered');
    await page.waitForFunction(() =>
      (globalThis as unknown as PageWindow).document
        .querySelector('#timeline li')
        ?.textContent?.includes('MessageDelivered'),
    );
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).consoleTestMark)).toBe(
      'no reload',
    );
  });

  it('handles a message from the keyboard', async () => {
    const { page } = browser;
    await page.locator(`[data-key="handle:${firstMessageId}"]`).focus();
    await page.keyboard.press('Enter');
    await page.locator('#dialog[open] #handle-status').waitFor();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('2');
    await page.keyboard.press('Enter');

    await waitForText(page, stateOf(firstMessageId), 'handled');
    expect(await v1(`/shops/shop-1/messages?state=handled`)).toMatchObject({
      items: [{ id: firstMessageId, state: 'handled', status: 2 }],
    });
    // The dialog gives focus back to the Handle button it was opened from.
    expect(
      await page.evaluate(() => (globalThis as unknown as PageWindow).document.activeElement?.textContent),
    ).toBe('Handle');
  });

  it('shows pending messages and their age in the overview', async () => {
    const { page } = browser;
    await registerDevice(broker.ctx, 'shop-2', 'pos-1', 'main');
    const pendingId = await notify('r-2', 12, 'checkout'); // the cashier does not ack this one
    await page.locator('.top-nav a', { hasText: 'Shops' }).click();
    await waitForText(page, '#shops tr[data-shop-id="shop-1"] [data-field="pending"]', '1');
    await waitForText(page, '#shops tr[data-shop-id="shop-1"] [data-field="mains-online"]', '1 / 1');
    await page.locator('#shops tr[data-shop-id="shop-2"]').waitFor();
    await page.locator('#shops tr[data-shop-id="shop-1"] [data-field="oldest-pending"] time').waitFor();
    await saveScreenshot(page, 'overview');

    await page.locator('#shop-search').fill('shop-2');
    await page.locator('#shops tr[data-shop-id="shop-1"]').waitFor({ state: 'detached' });
    expect(await page.locator('#shops tbody tr').count()).toBe(1);
    await page.locator('#shop-search').fill('');

    await page.locator('#shops a', { hasText: 'shop-1' }).click();
    await waitForText(page, stateOf(pendingId), 'pending');
    await page.locator('#timeline li', { hasText: 'checkout' }).waitFor();
    await saveScreenshot(page, 'shop');
  });

  it('lists live connections across edges and disconnects one', async () => {
    const { page } = browser;
    await page.locator('.top-nav a', { hasText: 'Operations' }).click();
    const waiterRow = page.locator('#ops-connections tr', { hasText: 'waiter-1' });
    await waiterRow.waitFor();
    await page.locator('#ops-connections tr', { hasText: 'pos-1' }).waitFor();
    await waitForText(page, '#ops-health [data-field="api-ready"]', 'ready');
    await page.locator('#ops-health', { hasText: broker.edge.edgeId }).waitFor();
    await page.locator('#ops-lag tr[data-group="persister"]').first().waitFor();
    await page.locator('#ops-retries [data-count="delayed"]').waitFor();
    await saveScreenshot(page, 'operations');

    await waiterRow.getByRole('button', { name: /Disconnect/ }).click();
    await page.locator('#dialog[open] button[type="submit"]').click();
    expect((await waiter.closed).code).toBe(4000);
    await waiterRow.waitFor({ state: 'detached' });
  });

  it('revokes a device: its socket is closed with 4403 and it shows as revoked', async () => {
    const { page } = browser;
    await page.goto(`${broker.consoleUrl}#/shops/shop-1`);
    await waitForText(page, deviceStateOf('pos-1'), 'online');
    await page.getByRole('button', { name: 'Revoke pos-1' }).click();
    await page.locator('#dialog[open] button[type="submit"]', { hasText: 'Revoke' }).click();
    expect((await cashier.closed).code).toBe(4403);
    await waitForText(page, deviceStateOf('pos-1'), 'revoked');
    expect(await page.getByRole('button', { name: 'Revoke pos-1' }).count()).toBe(0);
  });

  it('marks a device of the original protocol, and a delivery that was only a write to its socket', async () => {
    const { page } = browser;
    await registerDevice(broker.ctx, 'shop-3', 'pos-old', 'main', { legacy: true });
    const handheld = await loginRaw(broker.wsUrl, await registerDevice(broker.ctx, 'shop-3', 'pad-1', 'sub'));
    handheld.send({ op: 'notify', req_id: 'old-1', table_id: 3, type: 'add_dish', status: 0, data: {} });
    const reply = await handheld.next((frame) => frame.op === 'notify' && frame.req_id === 'old-1');
    expect(reply).toMatchObject({ code: 0 });
    const messageId = `${(reply.data as { event_id: string }).event_id}.pos-old`;
    // What the edge records when it has written the message to a legacy main's socket (SPEC §9.1: no ack exists).
    const now = Date.now();
    await new EventLog(broker.ctx.redis, broker.ctx.keys).ack(
      'shop-3',
      'pos-old',
      'edge:legacy',
      [messageId],
      newEventId(now),
      now,
      'socket-write',
    );
    await page.goto(`${broker.consoleUrl}#/shops/shop-3`);
    await page.locator('#devices tr[data-client-id="pos-old"]', { hasText: 'main (legacy)' }).waitFor();
    await waitForText(page, stateOf(messageId), 'delivered');
    await page
      .locator(`#messages li[data-message-id="${messageId}"]`, { hasText: '(socket write, no ack)' })
      .waitFor();
    handheld.ws.close();
  });

  it('fits a 768 px wide tablet screen in every view', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 768, height: 1024 });
    for (const [hash, heading] of [
      ['#/', 'Shops'],
      ['#/shops/shop-1', 'Shop shop-1'],
      ['#/operations', 'Operations'],
    ] as const) {
      await page.goto(`${broker.consoleUrl}${hash}`);
      await page.locator('h1', { hasText: heading }).waitFor();
      await page.locator('.region').first().locator('*').first().waitFor();
      expect({ hash, fits: await fitsWidth(page) }).toEqual({ hash, fits: true });
    }
  });
});
