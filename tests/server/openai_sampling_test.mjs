// End-to-end: sampling outputs through the official `openai` npm client — log
// probabilities in OpenAI's chat and legacy completions shapes, streamed and not; n
// replies to one prompt (the server gives 'tiny' three slots, --parallel 3); and
// llama-server's sampling fields.
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

// --- n: several replies, the prompt decoded once; seeded replies are reproducible.
const sampled = { temperature: 1, seed: 7, max_tokens: 8, ignore_eos: true };
const three = await client.chat.completions.create({ model, messages, ...sampled, n: 3, logprobs: true });
assert.deepEqual(three.choices.map((c) => c.index), [0, 1, 2]);
assert.equal(three.usage.completion_tokens, 24);
assert.ok(three.usage.prompt_tokens_details.cached_tokens <= three.usage.prompt_tokens);  // counted once
for (const c of three.choices) {
  assert.equal(c.finish_reason, 'length');
  assert.equal(c.logprobs.content.length, 8);
}
assert.equal(new Set(three.choices.map((c) => c.message.content)).size, 3, 'three seeds gave the same reply');
const again = await client.chat.completions.create({ model, messages, ...sampled, n: 3 });
assert.deepEqual(again.choices.map((c) => c.message.content), three.choices.map((c) => c.message.content));

const texts = ['', ''];
const finishes = [];
const twoStreamed = await client.completions.create({ model, prompt: 'Once upon', ...sampled, n: 2, stream: true,
                                                      stream_options: { include_usage: true } });
let streamUsage;
for await (const chunk of twoStreamed) {
  for (const c of chunk.choices) {
    texts[c.index] += c.text;
    if (c.finish_reason) finishes[c.index] = c.finish_reason;
  }
  if (chunk.usage) streamUsage = chunk.usage;
}
const two = await client.completions.create({ model, prompt: 'Once upon', ...sampled, n: 2 });
assert.deepEqual(texts, two.choices.map((c) => c.text));
assert.deepEqual(finishes, ['length', 'length']);
assert.equal(streamUsage.completion_tokens, 16);

// --- llama-server's sampling fields, on OpenAI's routes as llama-server takes them.
const extended = await client.completions.create({ model, prompt: 'Once upon', temperature: 1, seed: 4, n_predict: 6,
  ignore_eos: true, cache_prompt: true, repeat_last_n: 32, typical_p: 0.9, top_n_sigma: 2, xtc_probability: 0.5,
  xtc_threshold: 0.1, dynatemp_range: 0.3, dry_multiplier: 0.8, dry_base: 1.75, dry_allowed_length: 2,
  dry_penalty_last_n: -1, dry_sequence_breakers: ['\n'] });
assert.equal(extended.usage.completion_tokens, 6, 'n_predict was not taken as max_tokens');
const mirostat = await client.chat.completions.create({ model, messages, temperature: 1, seed: 4, max_tokens: 6,
  ignore_eos: true, mirostat: 2, mirostat_tau: 4, mirostat_eta: 0.2 });
assert.equal(mirostat.usage.completion_tokens, 6);

// --- Refused with a 400 naming the field.
await expectStatus(400, client.completions.create({ model, prompt: 'x', mirostat: 3 }), /mirostat/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', typical_p: 0 }), /typical_p/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', dry_sequence_breakers: [''] }),
                   /dry_sequence_breakers/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', n_probs: 3 }), /n_probs/);
await expectStatus(400, client.chat.completions.create({ model, messages, n: 4 }), /'n'.*at most 3/);
await expectStatus(400, client.chat.completions.create({ model, messages, n: 0 }), /'n'/);
await expectStatus(400, client.chat.completions.create({ model, messages, top_logprobs: 2 }), /top_logprobs/);
await expectStatus(400, client.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 21 }),
                   /top_logprobs/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', logprobs: 6 }), /logprobs/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', top_logprobs: 2 }), /top_logprobs/);
console.log('openai sampling outputs: ok');
