// The MQTT peer on the same load: our own Mosquitto on a free port (generated config, persistence on, in the
// run's work directory), QoS 1 and persistent sessions (clean: false), one publisher and two subscribers per shop,
// each publisher keeping the same number of messages in flight as a sub device does in the throughput scenario.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from './lib/broker';
import { track } from './lib/children';
import { cpuSecondsOf } from './lib/machine';
import { notifyPayload } from './lib/shops';
import { perSecond, round } from './lib/stats';
import { sleep, waitUntil } from './lib/wait';

export interface MosquittoOptions {
  shops: number;
  inFlightPerPublisher: number;
  warmupMs: number;
  windowMs: number;
}

export interface MosquittoResult {
  version: string;
  shops: number;
  inFlightPerPublisher: number;
  windowS: number;
  publishesPerS: number;
  deliveriesPerS: number;
  deliveryDrainS: number | null;
  cores: Record<string, number>;
}

const MOSQUITTO = '/usr/sbin/mosquitto';

export async function runMosquitto(workDir: string, options: MosquittoOptions): Promise<MosquittoResult> {
  const dir = join(workDir, 'mosquitto');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 100000',
      `log_dest file ${dir}/mosquitto.log`,
      'log_type error',
      'log_type warning',
      `user ${userInfo().username}`,
      '',
    ].join('\n'),
  );
  const child = track(spawn(MOSQUITTO, ['-c', config], { stdio: 'ignore' }));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const clients: MqttClient[] = [];
  try {
    const url = `mqtt://127.0.0.1:${port}`;
    const connect = async (clientId: string) => {
      for (let attempt = 0; ; attempt++) {
        try {
          const client = await mqtt.connectAsync(url, {
            clientId,
            clean: false,
            protocolVersion: 4,
            reconnectPeriod: 0,
          });
          clients.push(client);
          return client;
        } catch (err) {
          if (attempt > 50) throw err;
          await sleep(100); // Mosquitto still starting
        }
      }
    };

    const counts = { sent: 0, published: 0, delivered: 0 };
    let isRunning = true;
    let n = 0;
    const publishers: Array<{ client: MqttClient; topic: string }> = [];
    for (let s = 0; s < options.shops; s++) {
      const topic = `shops/mq-${s}/notify`;
      for (const main of ['main-1', 'main-2']) {
        const subscriber = await connect(`mq-${s}-${main}`);
        await subscriber.subscribeAsync(topic, { qos: 1 });
        subscriber.on('message', () => {
          counts.delivered += 1;
        });
      }
      publishers.push({ client: await connect(`mq-${s}-sub-1`), topic });
    }

    for (const { client, topic } of publishers) {
      const sendNext = () => {
        counts.sent += 1;
        n += 1;
        client.publish(topic, notifyPayload(n, performance.now()), { qos: 1 }, (err) => {
          if (!err) counts.published += 1;
          if (isRunning) sendNext();
        });
      };
      for (let i = 0; i < options.inFlightPerPublisher; i++) sendNext();
    }

    const pid = child.pid ?? 0;
    await sleep(options.warmupMs);
    const before = { ...counts };
    const t0 = performance.now();
    const cpu0 = { mosquitto: cpuSecondsOf(pid), generator: cpuTotal() };
    await sleep(options.windowMs);
    const after = { ...counts };
    const t1 = performance.now();
    const cpu1 = { mosquitto: cpuSecondsOf(pid), generator: cpuTotal() };
    const windowMs = t1 - t0;
    isRunning = false;
    const hasDrained = await waitUntil(() => counts.delivered >= counts.published * 2, 60_000);

    return {
      version: 'mosquitto 2.0.11',
      shops: options.shops,
      inFlightPerPublisher: options.inFlightPerPublisher,
      windowS: round(windowMs / 1000, 1),
      publishesPerS: Math.round(perSecond(after.published - before.published, windowMs)),
      deliveriesPerS: Math.round(perSecond(after.delivered - before.delivered, windowMs)),
      deliveryDrainS: hasDrained ? round((performance.now() - t1) / 1000, 1) : null,
      cores: {
        mosquitto: round((cpu1.mosquitto - cpu0.mosquitto) / (windowMs / 1000), 2),
        'load generator': round((cpu1.generator - cpu0.generator) / (windowMs / 1000), 2),
      },
    };
  } finally {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    child.kill('SIGTERM');
    await exited;
  }
}

function cpuTotal(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

export function printMosquitto(result: MosquittoResult): void {
  console.log(
    `mosquitto (${result.version}, QoS 1, clean: false, persistence on): ${result.shops} shops × (1 publisher, 2 subscribers), ${result.inFlightPerPublisher} in flight per publisher, ${result.windowS} s window`,
  );
  console.log(
    `  publishes/s ${result.publishesPerS}   deliveries/s ${result.deliveriesPerS}   cores: mosquitto ${result.cores.mosquitto}, load generator ${result.cores['load generator']}`,
  );
}
