// End-to-end: the OpenAI-compatible API of `kapsl serve`, driven by the official `openai`
// npm client. Environment: KAPSL_BASE (server URL), OPENAI_NODE_MODULES (where the test
// setup installed openai). Exits non-zero on the first failed check.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { expectStatus } from './expect_status.mjs';

const require = createRequire(process.env.OPENAI_NODE_MODULES + '/');
const { OpenAI } = require('openai');
const base = process.env.KAPSL_BASE;
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 0 });


async function metric(line) {
  const text = await (await fetch(base + '/metrics')).text();
  const row = text.split('\n').find((l) => l.startsWith(line + ' '));
  return row ? Number(row.split(' ')[1]) : 0;
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const greedy = { temperature: 0, seed: 1 };

// --- Models
const models = await client.models.list();
const ids = models.data.map((m) => m.id).sort();
assert.deepEqual(ids, ['chat', 'embed', 'encoder', 'tiny']);
assert.equal((await client.models.retrieve('tiny')).id, 'tiny');

// --- Completions, plain and streamed: the same greedy text both ways
const completion = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, ...greedy });
assert.equal(completion.object, 'text_completion');
assert.equal(typeof completion.choices[0].text, 'string');
assert.ok(['stop', 'length'].includes(completion.choices[0].finish_reason));
assert.ok(completion.usage.prompt_tokens > 0);
assert.ok(completion.usage.completion_tokens >= 1 && completion.usage.completion_tokens <= 12);
assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);

const chunks = await collect(await client.completions.create({
  model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, stream: true, stream_options: { include_usage: true }, ...greedy }));
const streamed = chunks.flatMap((c) => c.choices.map((ch) => ch.text)).join('');
assert.equal(streamed, completion.choices[0].text);
assert.equal(chunks.at(-1).usage.completion_tokens, completion.usage.completion_tokens);
assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === completion.choices[0].finish_reason));

// Token-id prompts work too.
const byTokens = await client.completions.create({ model: 'tiny', prompt: [1, 450, 4996], max_tokens: 3, ...greedy });
assert.equal(byTokens.usage.prompt_tokens, 3);

// --- Chat completions, plain and streamed (the phi-3 model carries a chat template)
const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hi.' }];
const chat = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 10, ...greedy });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(typeof chat.choices[0].message.content, 'string');
assert.ok(chat.usage.prompt_tokens > 5);

const chatChunks = await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 10, stream: true, ...greedy }));
assert.equal(chatChunks[0].object, 'chat.completion.chunk');
assert.equal(chatChunks[0].choices[0].delta.role, 'assistant');
const chatText = chatChunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
assert.equal(chatText, chat.choices[0].message.content);
assert.equal(chatChunks.at(-1).choices[0].finish_reason, chat.choices[0].finish_reason);

// --- Embeddings: the client asks for base64 by default and decodes it; floats must match
const emb = await client.embeddings.create({ model: 'embed', input: ['hello world', 'goodbye'] });
assert.equal(emb.data.length, 2);
const v = emb.data[0].embedding;
assert.ok(v.length > 0);
const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
const embFloat = await client.embeddings.create({ model: 'embed', input: 'hello world', encoding_format: 'float' });
assert.equal(embFloat.data[0].embedding.length, v.length);
embFloat.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - v[i]) < 1e-6));
assert.ok(emb.usage.prompt_tokens > 0);

// --- An ONNX encoder with the embed task serves /v1/embeddings too: text through its
// WordPiece vocabulary, or token ids; the same tokens give the same vector.
const enc = await client.embeddings.create({ model: 'encoder', input: ['hello world', 'goodbye'] });
assert.equal(enc.data.length, 2);
assert.equal(enc.data[0].embedding.length, 32);
const encNorm = Math.sqrt(enc.data[0].embedding.reduce((s, x) => s + x * x, 0));
assert.ok(Math.abs(encNorm - 1) < 1e-3, `norm ${encNorm}`);
assert.equal(enc.usage.prompt_tokens, 4 + 4);  // [CLS] hello world [SEP], [CLS] good ##bye [SEP]
const encIds = await client.embeddings.create({ model: 'encoder', input: [[2, 4, 5, 3]], encoding_format: 'float' });
encIds.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - enc.data[0].embedding[i]) < 1e-5));
await expectStatus(400, client.embeddings.create({ model: 'add', input: 'x' }), /embed|tokenizer|output/);

// --- The Responses API, whole and streamed (text only)
const resp = await client.responses.create({ model: 'chat', instructions: 'Be brief.', input: 'Say hi', max_output_tokens: 6,
                                             temperature: 0 });
assert.equal(resp.object, 'response');
assert.ok(resp.status === 'completed' || resp.status === 'incomplete', resp.status);
assert.equal(typeof resp.output_text, 'string');
assert.ok(resp.usage.output_tokens >= 1 && resp.usage.output_tokens <= 6);
const events = [];
const respStream = await client.responses.create({ model: 'chat', instructions: 'Be brief.',
                                                   input: [{ role: 'user', content: 'Say hi' }],
                                                   max_output_tokens: 6, temperature: 0, stream: true });
for await (const event of respStream) events.push(event);
const types = events.map((e) => e.type);
assert.equal(types[0], 'response.created');
const last = events[events.length - 1];
assert.ok(last.type === 'response.completed' || last.type === 'response.incomplete', last.type);
const streamedText = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
assert.equal(streamedText, last.response.output[0].content[0].text);
assert.equal(streamedText, resp.output_text, 'greedy: the same text streamed and not');
assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
await expectStatus(400, client.responses.create({ model: 'chat', input: 'x', previous_response_id: 'resp_1' }),
                   /previous_response_id/);
await expectStatus(400, client.responses.create({ model: 'chat', input: 'x', tools: [{ type: 'web_search' }] }),
                   /tools/);

// --- Errors, in OpenAI's shape, and the server keeps serving
await expectStatus(404, client.completions.create({ model: 'nosuch', prompt: 'x' }), /unknown model/);
await expectStatus(400, client.chat.completions.create({ model: 'add', messages }), /does not generate text/);
// A model without a chat template chats through chatml, as with llama-server.
const fallback = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 });
assert.equal(fallback.choices[0].message.role, 'assistant');
await expectStatus(400, client.chat.completions.create({ model: 'tiny', messages, chat_template: 'no-such-template' }),
                   /chat template/);
await expectStatus(400, client.completions.create({ model: 'tiny', prompt: 'x', temperature: 5 }), /temperature/);
await expectStatus(400, client.completions.create({ model: 'tiny', prompt: 'x', n: 4 }), /'n'/);  // 3 slots
await expectStatus(400, client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 1000000 }), /context/);
await expectStatus(400, client.chat.completions.create({ model: 'chat', messages: [] }), /messages/);
await expectStatus(400, client.embeddings.create({ model: 'embed', input: [''] }), /empty/);
await expectStatus(400, client.completions.create({ model: 'tiny', prompt: [99999999] }));
const raw = await fetch(base + '/v1/chat/completions', { method: 'POST', body: '{"model": ', headers: { 'content-type': 'application/json' } });
assert.equal(raw.status, 400);
const rawBody = await raw.json();
assert.equal(rawBody.error.type, 'invalid_request_error');
assert.match(rawBody.error.message, /JSON/);

// --- A client that disconnects cancels its generation
const cancelledBefore = await metric('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}');
const controller = new AbortController();
const long = await client.completions.create(
  { model: 'tiny', prompt: 'Count:', max_tokens: 3000, ignore_eos: true, stream: true },
  { signal: controller.signal });
let seen = 0;
try {
  for await (const chunk of long) {
    if (chunk.choices[0]?.text) seen += 1;
    if (seen >= 3) controller.abort();
  }
} catch (e) {
  assert.ok(e.name === 'APIUserAbortError' || e.name === 'AbortError', e.name);
}
let cancelled = cancelledBefore;
for (let i = 0; i < 100 && cancelled === cancelledBefore; i++) {
  await new Promise((r) => setTimeout(r, 100));
  cancelled = await metric('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}');
}
assert.equal(cancelled, cancelledBefore + 1, 'the aborted stream was not cancelled');

// --- Non-streaming too: the server watches the connection while it generates, so a
// client that gives up before the response does not leave the model generating for nobody.
const cancelledQuiet = await metric('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}');
const generatedBefore = await metric('kapsl_inference_generated_tokens_total{model="tiny"}');
const controller3 = new AbortController();
const quiet = client.completions.create(
  { model: 'tiny', prompt: 'Count:', max_tokens: 3000, ignore_eos: true }, { signal: controller3.signal, maxRetries: 0 });
for (let i = 0; i < 100 && await metric('kapsl_inference_in_flight_requests{model="tiny"}') === 0; i++) {
  await new Promise((r) => setTimeout(r, 20));
}
controller3.abort();
await assert.rejects(quiet, (e) => /abort/i.test(`${e.constructor.name} ${e.name} ${e.message}`));
let quietCancelled = cancelledQuiet;
for (let i = 0; i < 100 && quietCancelled === cancelledQuiet; i++) {
  await new Promise((r) => setTimeout(r, 100));
  quietCancelled = await metric('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}');
}
assert.equal(quietCancelled, cancelledQuiet + 1, 'the abandoned non-streaming request was not cancelled');
assert.ok(await metric('kapsl_inference_generated_tokens_total{model="tiny"}') - generatedBefore < 3000,
  'the abandoned request generated all its tokens');

// --- Overload: the server runs with --max-concurrency 1 --max-queue 0 for 'tiny'
const controller2 = new AbortController();
const busy = await client.completions.create(
  { model: 'tiny', prompt: 'Count:', max_tokens: 3000, ignore_eos: true, stream: true },
  { signal: controller2.signal });
const iter = busy[Symbol.asyncIterator]();
await iter.next();  // the first chunk: the generation holds the model's only turn
const rejected = await expectStatus(429, client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 1 }), /busy/);
assert.equal(rejected.headers.get('retry-after'), '1');
const cancelledBusy = await metric('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}');
controller2.abort();
try { while (!(await iter.next()).done); } catch { /* aborted */ }
// The server notices the disconnect at its next write; wait for that before reusing the
// model's only turn (slow builds such as ASan take longer to get there).
for (let i = 0; i < 100; i++) {
  if (await metric('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}') > cancelledBusy) break;
  await new Promise((r) => setTimeout(r, 100));
}

// Still serving.
const after = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 2, ...greedy });
assert.ok(after.usage.completion_tokens >= 1);
console.log('openai e2e: ok');
