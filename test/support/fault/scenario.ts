// The shape of every fault case: start the load, let it flow, inject the fault, wait until the load flows again,
// stop it, and let the checker judge. Progress is measured in messages received, never in time.
import { type TestContext, waitFor } from '#test-support';
import { type CheckResult, checkNothingLost } from './checker';
import type { FaultCluster } from './cluster';
import { Load, type LoadOptions } from './load';

export interface ScenarioOptions extends Partial<Omit<LoadOptions, 'url' | 'shopPrefix'>> {
  /** Names the case's shops and its lines in the output. */
  label: string;
  /** Messages to receive before the fault and again after it (default 300). */
  flowing?: number;
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
  const { label, flowing = 300, settleMs = 40_000, ...shape } = options;
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
    load.start();
    await flowed(load, flowing, 'the load to flow');
    const injected = await inject(load);
    await flowed(load, flowing, 'the load to flow again after the fault');
    await load.stop();
    console.log(`[fault] ${label}: injected: ${injected}`);
    console.log(`[fault] ${label}: ${load.summary()}`);
    const result = await checkNothingLost(ctx, load.recording, { label, settleMs });
    if (result.violations.length > 0) console.log(cluster.outputs(10));
    return { ...result, load, injected };
  } finally {
    await load.close();
  }
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
export async function allBackOnline(load: Load, notOn?: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    () => load.devices.every((d) => d.client.isReady && (!notOn || d.client.session?.edge_id !== notOn)),
    { timeoutMs, what: 'every device logged in again' },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; ${load.notReady()}`);
  });
}
