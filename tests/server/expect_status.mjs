// What the client tests share: a call the server must refuse, with its HTTP status and,
// when given, a message matching `pattern`. Returns the client's error.
import assert from 'node:assert/strict';

export async function expectStatus(status, promise, pattern) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `expected HTTP ${status}, got ${e.status}: ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected HTTP ${status}, got success`);
}
