// The shape of every fault case: start the load, let it flow, inject the fault, wait until the load flows again,
// stop it, and let the checker judge. Progress is measured in messages received, never in time.
import { readLog, type TestContext, waitFor } from '#test-support';
import { type CheckResult, checkNothingLost } from './checker';
import type { FaultCluster } from './cluster';
import { Load, type LoadOptions } from './load';

export interface ScenarioOptions extends Partial<Omit<LoadOptions, 'url' | 'shopPrefix'>> {
  /** Names the case's shops and its lines in the output. */
  label: string;
  /** Messages to receive before the fault and again after it (default 300), and how long that may take. */
  flowing?: number;
  flowTimeoutMs?: number;
  settleMs?: number;
}

export interface ScenarioResult extends CheckResult {
  load: Load;
  injected: string;
}

/** 20 shops × 1 sub + 2 mains, 100 notifies/s over sockets, unless told otherwise. */
export async function runUnderLoad(
  ctx: TestContext,
  cluster: FaultCluster,
  options: ScenarioOptions,
  inject: (load: Load) => Promise<string>,
): Promise<ScenarioResult> {
  const { label, flowing = 300, flowTimeoutMs = 60_000, settleMs = 40_000, ...shape } = options;
  const load = await Load.connect(ctx, {
    url: cluster.wsUrl,
    shopPrefix: label,
    shops: 20,
    mainsPerShop: 2,
    subsPerShop: 1,
    notifiesPerS: 100,
    ...(cluster.services.includes('api') ? { apiUrl: cluster.apiUrl } : {}),
    ...shape,
  });
  try {
    return await runLoad(ctx, cluster, load, { label, flowing, flowTimeoutMs, settleMs }, inject);
  } catch (err) {
    console.log(`[fault] ${label}: failed: ${load.summary()}\n${cluster.outputs(15)}`);
    throw err;
  } finally {
    await load.close();
  }
}

async function runLoad(
  ctx: TestContext,
  cluster: FaultCluster,
  load: Load,
  {
    label,
    flowing,
    flowTimeoutMs,
    settleMs,
  }: { label: string; flowing: number; flowTimeoutMs: number; settleMs: number },
  inject: (load: Load) => Promise<string>,
): Promise<ScenarioResult> {
  load.start();
  await flowed(load, flowing, 'the load to flow', flowTimeoutMs);
  const injected = await inject(load);
  await flowed(load, flowing, 'the load to flow again after the fault', flowTimeoutMs);
  await load.stop();
  console.log(`[fault] ${label}: injected: ${injected}`);
  console.log(`[fault] ${label}: ${load.summary()}`);
  const result = await checkNothingLost(ctx, load.recording, { label, settleMs });
  if (result.violations.length > 0) console.log(cluster.outputs(15));
  return { ...result, load, injected };
}

/** Waits until the mains have received `count` more messages than now. */
export async function flowed(load: Load, count: number, what: string, timeoutMs = 60_000): Promise<void> {
  const from = load.recording.receivedAt.length;
  await waitFor(() => load.recording.receivedAt.length >= from + count, { timeoutMs, what }).catch(
    (err: Error) => {
      throw new Error(
        `${err.message} (${load.recording.receivedAt.length - from} of ${count}); ${load.notReady()}`,
      );
    },
  );
}

/** Waits until every device is logged in again, none of them on `notOn` (an edge id). */
export async function allBackOnline(
  ctx: TestContext,
  load: Load,
  notOn?: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    () => load.devices.every((d) => d.client.isReady && (!notOn || d.client.session?.edge_id !== notOn)),
    { timeoutMs, what: 'every device logged in again' },
  ).catch(async (err: Error) => {
    const stuck = load.devices.filter((d) => !d.client.isReady).slice(0, 3);
    const histories = await Promise.all(stuck.map((d) => connectionHistory(ctx, d.shop, d.clientId)));
    throw new Error(`${err.message}; ${load.notReady()}\n${histories.join('\n')}`);
  });
}

/** The device's logins and closes as the log has them, one line each, for a failure message. */
export async function connectionHistory(ctx: TestContext, shop: string, clientId: string): Promise<string> {
  const lines = (await readLog(ctx))
    .filter((e) => e.shop_id === shop)
    .flatMap((e) => {
      if (e.type === 'DeviceLoggedIn' && e.data.client_id === clientId)
        return [`${e.at} logged in ${e.data.conn_id} on ${e.data.edge_id}`];
      if (e.type === 'ConnectionClosed' && e.data.client_id === clientId)
        return [
          `${e.at} closed ${e.data.conn_id} on ${e.data.edge_id}: ${e.data.reason} ${e.data.close_code ?? ''}`,
        ];
      return [];
    });
  const presence = await ctx.redis.hget(ctx.keys.presence(shop), clientId);
  return `${shop}/${clientId}:\n  ${lines.join('\n  ')}\n  presence now: ${presence ?? 'none'}`;
}
