/** What the DNS tests share. Not a test: importing this does nothing. */
import assert from 'node:assert/strict';
import { DnsStubError } from '../../src/services/dns-stub.js';

/** The DnsStubError `p` rejects with; fails when it resolves or rejects with anything else. */
export async function rejection(p: Promise<unknown>): Promise<DnsStubError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DnsStubError, String(e));
    return e;
  }
  assert.fail('expected a rejection');
}
