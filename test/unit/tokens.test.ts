// Device tokens: what verifies and what is refused, and that the tokens devices already carry (minted by an earlier
// version, with jose) keep verifying after the switch to fast-jwt.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DeviceTokens } from '#runtime';

const SECRET = 'a-secret-of-the-test-only-0123456789';
const claims = { shop_id: 'shop-1', client_id: 'cashier-1', type: 'main', token_id: 't_01TEST' } as const;

/** Minted with jose 6 (`SignJWT`, HS256, iss shop-broker, exp 2100-01-01) by the version before fast-jwt. */
const MINTED_BY_JOSE =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzaG9wX2lkIjoic2hvcC0xIiwidHlwZSI6Im1haW4iLCJpc3MiOiJzaG9wLWJyb2tlciIsInN1YiI6ImNhc2hpZXItMSIsImp0aSI6InRfMDFKT1NFIiwiaWF0IjoxNzY0OTc5MjAwLCJleHAiOjQxMDI0NDQ4MDB9.n3oJMYbfIIhpbLhbhP8ALFEIB25ZEqQnQP7ZxMQK8BY';
/** The same, with another issuer. */
const OTHER_ISSUER =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzaG9wX2lkIjoic2hvcC0xIiwidHlwZSI6Im1haW4iLCJpc3MiOiJzb21lb25lLWVsc2UiLCJzdWIiOiJjYXNoaWVyLTEiLCJqdGkiOiJ0XzAxSk9TRSIsImlhdCI6MTc2NDk3OTIwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.2t5DMTP3Qy7kkkDlSDRPvZYFHJzooqU7bxduKo7YNbY';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
function signed(header: unknown, payload: unknown, secret = SECRET): string {
  const head = `${b64url(header)}.${b64url(payload)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

async function refusal(tokens: DeviceTokens, token: string): Promise<{ code: string; message: string }> {
  const err = await tokens.verify(token).then(
    () => null,
    (e: unknown) => e as { code: string; message: string },
  );
  if (err === null) throw new Error('the token verified');
  return { code: err.code, message: err.message };
}

describe('device tokens', () => {
  const tokens = new DeviceTokens(SECRET, 3600);

  it('verify what they mint', async () => {
    expect(await tokens.verify(await tokens.mint(claims))).toEqual(claims);
  });

  it('verify the tokens an earlier version minted with jose', async () => {
    expect(await tokens.verify(MINTED_BY_JOSE)).toEqual({ ...claims, token_id: 't_01JOSE' });
  });

  it('refuse an expired token, saying so', async () => {
    const expired = await tokens.mint(claims, Date.now() - 3_600_000, 1);
    expect(await refusal(tokens, expired)).toEqual({ code: 'TOKEN_INVALID', message: 'token expired' });
  });

  it('refuse a token signed with another secret, another issuer, tampered, unsigned or malformed', async () => {
    const payload = {
      shop_id: 'shop-1',
      type: 'main',
      iss: 'shop-broker',
      sub: 'c',
      jti: 't',
      exp: 4102444800,
    };
    const header = { alg: 'HS256', typ: 'JWT' };
    const minted = await tokens.mint(claims);
    const [head, , signature] = minted.split('.');
    const tampered = `${head}.${b64url({ ...payload, shop_id: 'shop-2' })}.${signature}`;
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
    for (const token of [
      signed(header, payload, 'another-secret'),
      OTHER_ISSUER,
      tampered,
      unsigned,
      signed({ alg: 'HS512', typ: 'JWT' }, payload),
      'not-a-token',
      '',
    ]) {
      expect((await refusal(tokens, token)).code).toBe('TOKEN_INVALID');
    }
  });

  it('refuse a well-signed token that lacks a claim or names an unknown type', async () => {
    const header = { alg: 'HS256', typ: 'JWT' };
    const full = { shop_id: 'shop-1', type: 'main', iss: 'shop-broker', sub: 'c', jti: 't', exp: 4102444800 };
    expect(await tokens.verify(signed(header, full))).toEqual({
      shop_id: 'shop-1',
      client_id: 'c',
      type: 'main',
      token_id: 't',
    });
    for (const key of ['shop_id', 'sub', 'jti'] as const) {
      const { [key]: _dropped, ...rest } = full;
      expect(await refusal(tokens, signed(header, rest))).toEqual({
        code: 'TOKEN_INVALID',
        message: 'token lacks shop_id, sub, jti or type',
      });
    }
    expect((await refusal(tokens, signed(header, { ...full, type: 'cashier' }))).code).toBe('TOKEN_INVALID');
  });
});
