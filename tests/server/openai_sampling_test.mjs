// End-to-end: sampling outputs through the official `openai` npm client — log
// probabilities in OpenAI's chat and legacy completions shapes, streamed and not.
// Environment: KAPSL_BASE, OPENAI_NODE_MODULES. Exits non-zero on the first failed check.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { expectStatus } from './expect_status.mjs';

const require = createRequire(process.env.OPENAI_NODE_MODULES + '/');
const { OpenAI } = require('openai');
const client = new OpenAI({ baseURL: process.env.KAPSL_BASE + '/v1', apiKey: 'unused', maxRetries: 0 });
const model = 'tiny';
const messages = [{ role: 'user', content: 'Say something.' }];
const greedy = { temperature: 0, max_tokens: 12 };

function checkEntry(e, top) {
  assert.equal(typeof e.token, 'string');
  assert.ok(e.logprob <= 0, `logprob ${e.logprob} > 0`);
  assert.ok(Array.isArray(e.bytes) && e.bytes.every((b) => Number.isInteger(b) && b >= 0 && b < 256));
  assert.equal(e.top_logprobs.length, top);
  for (let k = 1; k < e.top_logprobs.length; k++) {
    assert.ok(e.top_logprobs[k - 1].logprob >= e.top_logprobs[k].logprob, 'top_logprobs not most likely first');
  }
}

// --- Chat, whole: one entry per token, the greedy pick is the most likely token.
const chat = await client.chat.completions.create({ model, messages, ...greedy, logprobs: true, top_logprobs: 3 });
const content = chat.choices[0].logprobs.content;
assert.equal(content.length, chat.usage.completion_tokens - (chat.choices[0].finish_reason === 'stop' ? 1 : 0));
for (const e of content) {
  checkEntry(e, 3);
  assert.equal(e.token, e.top_logprobs[0].token);
  assert.equal(e.logprob, e.top_logprobs[0].logprob);
}
const bytes = Buffer.from(content.flatMap((e) => e.bytes));
assert.equal(bytes.toString('utf8'), chat.choices[0].message.content, 'the tokens\' bytes are not the reply');
assert.equal(chat.choices[0].logprobs.refusal, null);

// Without logprobs: null, as OpenAI.
const plain = await client.chat.completions.create({ model, messages, ...greedy });
assert.equal(plain.choices[0].logprobs, null);

// --- Chat, streamed: the chunks' entries are the whole reply's.
const stream = await client.chat.completions.create({ model, messages, ...greedy, logprobs: true, top_logprobs: 3,
                                                      stream: true });
const streamed = [];
for await (const chunk of stream) {
  if (chunk.choices[0]?.logprobs) streamed.push(...chunk.choices[0].logprobs.content);
}
assert.deepEqual(streamed.map((e) => [e.token, e.logprob]), content.map((e) => [e.token, e.logprob]));

// --- Legacy completions: tokens, token_logprobs, top_logprobs objects, text_offset.
const completion = await client.completions.create({ model, prompt: 'Once upon', ...greedy, logprobs: 2,
                                                     ignore_eos: true });
const lp = completion.choices[0].logprobs;
assert.equal(lp.tokens.length, 12);
assert.equal(lp.token_logprobs.length, 12);
assert.equal(lp.top_logprobs.length, 12);
assert.equal(lp.text_offset[0], 0);
for (let i = 0; i < 12; i++) {
  assert.ok(Object.keys(lp.top_logprobs[i]).length <= 2);
  assert.equal(Math.max(...Object.values(lp.top_logprobs[i])), lp.token_logprobs[i]);
  if (i > 0) assert.equal(lp.text_offset[i], lp.text_offset[i - 1] + Buffer.byteLength(lp.tokens[i - 1]));
}
const streamedCompletion = await client.completions.create({ model, prompt: 'Once upon', ...greedy, logprobs: 2,
                                                             ignore_eos: true, stream: true });
const streamedTokens = [];
for await (const chunk of streamedCompletion) streamedTokens.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
assert.deepEqual(streamedTokens, lp.tokens);

// --- Refused with a 400 naming the field.
await expectStatus(400, client.chat.completions.create({ model, messages, top_logprobs: 2 }), /top_logprobs/);
await expectStatus(400, client.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 21 }),
                   /top_logprobs/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', logprobs: 6 }), /logprobs/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', top_logprobs: 2 }), /top_logprobs/);
console.log('openai sampling outputs: ok');
