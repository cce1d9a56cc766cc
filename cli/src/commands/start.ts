// `broker start <service|all>`: runs one service, or all of them in one process. SIGTERM drains then stops
// every handle and exits 0; SIGHUP reloads the edge's TLS certificates.
import type { Command } from 'commander';
import {
  type Config,
  closeServer,
  describePostgres,
  type Logger,
  type ReadinessProbe,
  type ServiceHandle,
  serveHealth,
} from '#runtime';
import { isSchemaConflict, notTheBrokers } from './operator';
import { setup } from './setup';

const SERVICES = ['edge', 'persister', 'dispatcher', 'api'] as const;
type ServiceName = (typeof SERVICES)[number];

interface Started extends ServiceHandle {
  readiness?: ReadinessProbe;
  reloadTls?: () => void;
}

async function startOne(
  name: ServiceName,
  config: Config,
  log: Logger,
  healthServer: boolean,
): Promise<Started> {
  switch (name) {
    case 'edge':
      return (await import('#edge')).start(config, { log });
    case 'persister':
      return (await import('#persister')).start(config, { log, healthServer });
    case 'dispatcher':
      return (await import('#dispatcher')).start(config, { log, healthServer });
    case 'api':
      return (await import('#api')).start(config, { log });
    default: {
      const never: never = name;
      return never;
    }
  }
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start one service, or all of them in one process')
    .argument('<service>', `${SERVICES.join(' | ')} | all`)
    .addHelpText(
      'after',
      '\nExamples:\n  $ broker start all\n  $ EDGE_PORT=8081 EDGE_ID=edge-2 broker start edge\n  $ HEALTH_PORT=9091 broker start dispatcher',
    )
    .action(async (service: string) => {
      if (service !== 'all' && !(SERVICES as readonly string[]).includes(service)) {
        program.error(`broker start: unknown service "${service}" (expected ${SERVICES.join(', ')} or all)`, {
          exitCode: 2,
        });
      }
      const names = service === 'all' ? [...SERVICES] : [service as ServiceName];
      process.title = `broker-${service}`;
      const { config, log } = setup();
      const handles: Started[] = [];
      let isStopping = false;

      async function shutdown(signal: string) {
        if (isStopping) return;
        isStopping = true;
        log.info({ signal }, 'shutting down');
        await Promise.all(handles.map((handle) => handle.drain()));
        for (const handle of handles) await handle.stop();
        if (health) await closeServer(health);
        log.info('stopped');
        log.flush();
        process.exit(0);
      }
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGHUP', () => {
        for (const handle of handles) handle.reloadTls?.();
      });

      // In one process, the persister and the dispatcher share one health server on HEALTH_PORT.
      const sharesHealth = names.includes('persister') && names.includes('dispatcher');
      for (const name of names) {
        if (isStopping) break;
        try {
          handles.push(await startOne(name, config, log, !sharesHealth));
        } catch (err) {
          // A service waits for Redis and PostgreSQL to come back, but a database of another shape never will.
          if (!isSchemaConflict(err)) throw err;
          for (const handle of handles) await handle.stop();
          throw notTheBrokers(describePostgres(config.databaseUrl), err);
        }
      }
      let health: Awaited<ReturnType<typeof serveHealth>> | undefined;
      if (sharesHealth) {
        const probes = handles.flatMap((h) =>
          h.readiness && h.name !== 'edge' && h.name !== 'api' ? [h] : [],
        );
        health = await serveHealth('0.0.0.0', config.healthPort, async () => {
          const reports = await Promise.all(probes.map((h) => h.readiness!()));
          const checks: Record<string, string> = {};
          reports.forEach((report, i) => {
            for (const [key, value] of Object.entries(report.checks))
              checks[`${probes[i]!.name}.${key}`] = value;
          });
          return { ready: reports.every((r) => r.ready), checks };
        });
      }
      log.info({ services: names }, 'broker started');
    });
}
