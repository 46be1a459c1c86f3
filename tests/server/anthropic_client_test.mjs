// End-to-end: Anthropic's Messages API of `kapsl serve` (/v1/messages), driven by the
// official @anthropic-ai/sdk client, whole and streamed. Environment: KAPSL_BASE (server
// URL), OPENAI_NODE_MODULES (where the test setup installed the clients).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(process.env.OPENAI_NODE_MODULES + '/');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const client = new Anthropic({ baseURL: process.env.KAPSL_BASE, apiKey: 'unused', maxRetries: 0 });
const request = { model: 'chat', max_tokens: 6, temperature: 0, system: 'Be brief.',
                  messages: [{ role: 'user', content: 'Say hi' }] };

const message = await client.messages.create(request);
assert.equal(message.type, 'message');
assert.equal(message.role, 'assistant');
assert.equal(message.content[0].type, 'text');
assert.ok(['end_turn', 'max_tokens'].includes(message.stop_reason), message.stop_reason);
assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens >= 1);

const stream = client.messages.stream(request);
let streamed = '';
stream.on('text', (text) => { streamed += text; });
const final = await stream.finalMessage();
assert.equal(streamed, final.content[0].text);
assert.equal(final.content[0].text, message.content[0].text, 'greedy: the same text streamed and not');
assert.equal(final.stop_reason, message.stop_reason);
assert.equal(final.usage.output_tokens, message.usage.output_tokens);

for (const [extra, field] of [[{ messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }, /image/]]) {
  try {
    await client.messages.create({ ...request, ...extra });
    assert.fail('accepted ' + JSON.stringify(extra));
  } catch (e) {
    assert.equal(e.status, 400, e.message);
    assert.match(e.message, field);
  }
}
console.log('anthropic e2e: ok');
