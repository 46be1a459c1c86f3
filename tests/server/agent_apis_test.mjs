// End-to-end: tools and structured output through OpenAI's Responses API (the `openai`
// client's responses.create / responses.stream / responses.parse) and Anthropic's Messages
// API (the @anthropic-ai/sdk client's messages.create / messages.stream), on the
// random-weight model without a chat template ("tiny"): its output is constrained, so calls
// and JSON must validate whatever the weights say.
// Environment: KAPSL_BASE, OPENAI_NODE_MODULES. Exits non-zero on the first failed check.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { expectStatus } from './expect_status.mjs';

const require = createRequire(process.env.OPENAI_NODE_MODULES + '/');
const { OpenAI } = require('openai');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const Ajv = require('ajv');
const openai = new OpenAI({ baseURL: process.env.KAPSL_BASE + '/v1', apiKey: 'unused', maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: process.env.KAPSL_BASE, apiKey: 'unused', maxRetries: 0 });
const ajv = new Ajv({ strict: false });
const model = 'tiny';
const weatherSchema = { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, unit: { enum: ['c', 'f'] } },
                        required: ['city', 'unit'], additionalProperties: false };
const validateWeather = ajv.compile(weatherSchema);
const timeSchema = { type: 'object', properties: { zone: { type: 'string', maxLength: 8 } }, required: ['zone'] };

// --- Responses: function tools.
const fnTools = [{ type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: weatherSchema },
                 { type: 'function', name: 'get_time', description: 'The time in a zone', parameters: timeSchema }];
const ask = 'What is the weather in Paris?';
const forced = { model, input: ask, tools: fnTools, tool_choice: { type: 'function', name: 'get_weather' },
                 parallel_tool_calls: false, temperature: 0, max_output_tokens: 200 };
const resp = await openai.responses.create(forced);
const calls = resp.output.filter((item) => item.type === 'function_call');
assert.equal(calls.length, 1, JSON.stringify(resp.output));
assert.equal(calls[0].name, 'get_weather');
assert.equal(calls[0].status, 'completed');
assert.ok(validateWeather(JSON.parse(calls[0].arguments)), calls[0].arguments);
assert.equal(resp.tools.length, 1);
assert.equal(resp.tool_choice, 'required');

// Streamed: the events assemble, in the client's own accumulator, into the same call.
const stream = openai.responses.stream(forced);
const argDeltas = [];
stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
const streamedResp = await stream.finalResponse();
const streamedCall = streamedResp.output.find((item) => item.type === 'function_call');
assert.equal(streamedCall.arguments, calls[0].arguments);
assert.equal(argDeltas.join(''), calls[0].arguments);
assert.equal(streamedCall.call_id, streamedResp.output.find((i) => i.type === 'function_call').call_id);

// The loop: the call and its output sent back; the model answers in text.
const answer = await openai.responses.create({ model, tools: fnTools, tool_choice: 'none', max_output_tokens: 8,
  input: [{ role: 'user', content: ask }, calls[0],
          { type: 'function_call_output', call_id: calls[0].call_id, output: '{"temp": 21}' }] });
assert.equal(answer.output[0].type, 'message');
assert.equal(typeof answer.output_text, 'string');

// Structured output: text.format json_schema, through responses.parse.
const parsed = await openai.responses.parse({ model, input: 'Weather as JSON.', max_output_tokens: 400, temperature: 1,
  text: { format: { type: 'json_schema', name: 'weather', schema: weatherSchema, strict: true } } });
assert.ok(validateWeather(parsed.output_parsed), parsed.output_text);
const ordered = await openai.responses.create({ model, input: 'JSON', max_output_tokens: 200, text: { format: {
  type: 'json_schema', name: 'o', schema: { type: 'object', properties: { zeta: { type: 'integer' },
  alpha: { type: 'boolean' } }, required: ['zeta', 'alpha'] } } } });
assert.deepEqual(Object.keys(JSON.parse(ordered.output_text)), ['zeta', 'alpha'], 'the schema\'s key order was lost');
const jsonObject = await openai.responses.create({ model, input: 'JSON please.', max_output_tokens: 400,
  text: { format: { type: 'json_object' } } });
assert.equal(typeof JSON.parse(jsonObject.output_text), 'object');
await expectStatus(400, openai.responses.create({ model, input: 'x', tools: [{ type: 'file_search' }] }), /tools/);
await expectStatus(400, openai.responses.create({ model, input: 'x', tools: fnTools,
                                                  tool_choice: { type: 'function', name: 'nope' } }), /tool_choice/);
await expectStatus(400, openai.responses.create({ model, input: 'x', text: { format: { type: 'xml' } } }), /format/);
console.log('responses: forced call, streamed call, tool loop, parse, json_object and 3 refusals: ok');

// --- Anthropic Messages: client tools.
const claudeTools = [{ name: 'get_weather', description: 'The weather in a city', input_schema: weatherSchema },
                     { name: 'get_time', description: 'The time in a zone', input_schema: timeSchema }];
const request = { model, max_tokens: 200, temperature: 0, tools: claudeTools,
                  tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true }, messages: [{ role: 'user', content: ask }] };
const message = await anthropic.messages.create(request);
assert.equal(message.stop_reason, 'tool_use', JSON.stringify(message.content));
const use = message.content.find((b) => b.type === 'tool_use');
assert.equal(use.name, 'get_weather');
assert.ok(validateWeather(use.input), JSON.stringify(use.input));

const messageStream = anthropic.messages.stream(request);
const jsonPieces = [];
messageStream.on('inputJson', (piece) => jsonPieces.push(piece));
const final = await messageStream.finalMessage();
assert.equal(final.stop_reason, 'tool_use');
assert.deepEqual(final.content.find((b) => b.type === 'tool_use').input, use.input);
assert.deepEqual(JSON.parse(jsonPieces.join('')), use.input);

// `any` requires some call; the result goes back as a tool_result block.
const any = await anthropic.messages.create({ ...request, tool_choice: { type: 'any', disable_parallel_tool_use: true } });
assert.equal(any.content.filter((b) => b.type === 'tool_use').length, 1);
const reply = await anthropic.messages.create({ model, max_tokens: 8, tools: claudeTools, tool_choice: { type: 'none' },
  messages: [{ role: 'user', content: ask }, { role: 'assistant', content: message.content },
             { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 degrees' }] }] });
assert.equal(reply.content[0].type, 'text');
assert.ok(['end_turn', 'max_tokens'].includes(reply.stop_reason));

for (const [extra, field] of [[{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, /tools/],
                              [{ tool_choice: { type: 'tool', name: 'nope' } }, /tool_choice/],
                              [{ thinking: { type: 'enabled', budget_tokens: 1024 } }, /thinking/]]) {
  await expectStatus(400, anthropic.messages.create({ ...request, ...extra }), field);
}
console.log('anthropic: forced tool_use, streamed input_json, any, tool_result loop and 3 refusals: ok');
