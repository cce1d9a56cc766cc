// SPEC §8: which Redis and PostgreSQL `npm test` takes, with the machine's answers stubbed.
import { describe, expect, it } from 'vitest';
import {
  chooseServices,
  localDatabaseUrl,
  localRedisUrl,
  NoServicesError,
  type Probes,
} from '../support/services';

function probes(up: {
  redis?: boolean;
  postgres?: boolean;
  containers?: boolean;
}): Probes & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async redis(url) {
      asked.push(`redis ${url}`);
      return up.redis ?? false;
    },
    async postgres(url) {
      asked.push(`postgres ${url}`);
      return up.postgres ?? false;
    },
    async containerRuntime() {
      asked.push('containers');
      return up.containers ?? false;
    },
  };
}

describe('the test run’s choice of Redis and PostgreSQL', () => {
  it('takes REDIS_URL and DATABASE_URL when given, and probes nothing', async () => {
    const machine = probes({});
    const choice = await chooseServices(
      { REDIS_URL: 'redis://r:1', DATABASE_URL: 'postgres://p/db' },
      machine,
    );
    expect(choice).toEqual({
      redis: { source: 'given', url: 'redis://r:1' },
      postgres: { source: 'given', url: 'postgres://p/db' },
    });
    expect(machine.asked).toEqual([]);
  });

  it("takes npm start's local defaults when they answer", async () => {
    const machine = probes({ redis: true, postgres: true });
    const choice = await chooseServices({}, machine);
    expect(choice).toEqual({
      redis: { source: 'local', url: 'redis://127.0.0.1:6379' },
      postgres: { source: 'local', url: 'postgres://postgres@127.0.0.1:5432/postgres' },
    });
    expect(machine.asked).not.toContain('containers');
    expect(localRedisUrl()).toBe('redis://127.0.0.1:6379');
    expect(localDatabaseUrl()).toBe('postgres://postgres@127.0.0.1:5432/postgres');
  });

  it('starts containers for what does not answer, when a container runtime is there', async () => {
    const choice = await chooseServices({}, probes({ redis: true, containers: true }));
    expect(choice).toEqual({
      redis: { source: 'local', url: 'redis://127.0.0.1:6379' },
      postgres: { source: 'container' },
    });
  });

  it('says in one line how to get each, when nothing answers and no container runtime is there', async () => {
    const error = await chooseServices({ REDIS_URL: 'redis://r:1' }, probes({})).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NoServicesError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain('PostgreSQL at postgres://postgres@127.0.0.1:5432/postgres');
    expect(message).not.toContain('Redis at');
    expect(message).toMatch(/docker compose up -d redis postgres/);
    expect(message).toMatch(/REDIS_URL and DATABASE_URL/);
    expect(message).toMatch(/Docker/);
  });
});
