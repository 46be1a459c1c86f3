// End-to-end: structured output and tool calls through the official `openai` npm client,
// on the random-weight model without a chat template ("tiny", what the default model is):
// its output is constrained, so it must parse and validate whatever the weights say.
// Environment: KAPSL_BASE, OPENAI_NODE_MODULES (openai and ajv). Exits non-zero on the first
// failed check.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { expectStatus } from './expect_status.mjs';

const require = createRequire(process.env.OPENAI_NODE_MODULES + '/');
const { OpenAI } = require('openai');
const Ajv = require('ajv');
const base = process.env.KAPSL_BASE;
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 0 });
const ajv = new Ajv({ strict: false });
const model = 'tiny';
const messages = [{ role: 'user', content: 'Answer in JSON.' }];


// --- Structured output: chat.completions.parse with several schemas, several seeds.
const schemas = {
  person: {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, email: { type: 'string' } },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  nested: {
    type: 'object',
    properties: {
      order: {
        type: 'object',
        properties: {
          id: { type: 'integer' },
          customer: { type: 'object', properties: { city: { type: 'string', maxLength: 16 } }, required: ['city'] },
        },
        required: ['id', 'customer'],
      },
      paid: { type: 'boolean' },
    },
    required: ['order', 'paid'],
  },
  arrays: {
    type: 'object',
    properties: {
      tags: { type: 'array', items: { type: 'string', enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 4 },
      scores: { type: 'array', items: { type: 'number' }, maxItems: 3 },
    },
    required: ['tags', 'scores'],
  },
  enums: {
    type: 'object',
    properties: {
      status: { enum: ['open', 'closed', 'pending'] },
      priority: { type: 'integer', enum: [1, 2, 3] },
      note: { anyOf: [{ type: 'string', maxLength: 12 }, { type: 'null' }] },
    },
    required: ['status', 'priority', 'note'],
  },
};
let parsedCount = 0;
for (const [name, schema] of Object.entries(schemas)) {
  const validate = ajv.compile(schema);
  for (const seed of [1, 2, 3, 4, 5]) {
    const completion = await client.chat.completions.parse({
      model, messages, seed, temperature: 1, max_tokens: 1500,
      response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
    });
    const choice = completion.choices[0];
    assert.equal(choice.finish_reason, 'stop', `${name}/${seed}: ${choice.message.content}`);
    assert.ok(choice.message.parsed, `${name}/${seed}: not parsed: ${choice.message.content}`);
    assert.ok(validate(choice.message.parsed), `${name}/${seed}: ${JSON.stringify(validate.errors)}`);
    parsedCount += 1;
  }
}
console.log(`structured output: ${parsedCount} schema-constrained replies parsed and validated`);

// The output's keys come in the schema's order, as the client wrote it (not sorted).
const ordered = { type: 'object', properties: { zeta: { type: 'integer' }, alpha: { type: 'boolean' } },
                  required: ['zeta', 'alpha'], additionalProperties: false };
for (const body of [{ response_format: { type: 'json_schema', json_schema: { name: 'o', schema: ordered } } },
                    { json_schema: ordered }]) {
  const r = await client.chat.completions.create({ model, messages, seed: 1, max_tokens: 200, ...body });
  assert.deepEqual(Object.keys(JSON.parse(r.choices[0].message.content)), ['zeta', 'alpha'], r.choices[0].message.content);
}

// json_object, llama-server's json_schema and grammar fields, and a streamed constrained reply.
const obj = await client.chat.completions.create({ model, messages, seed: 7, max_tokens: 1500,
  response_format: { type: 'json_object' } });
assert.equal(typeof JSON.parse(obj.choices[0].message.content), 'object');
const yesNo = await client.chat.completions.create({ model, messages, seed: 3, grammar: 'root ::= "yes" | "no"' });
assert.match(yesNo.choices[0].message.content, /^(yes|no)$/);
const completion = await client.completions.create({ model, prompt: 'A number:', seed: 2, max_tokens: 64,
  json_schema: { type: 'integer' } });
assert.match(completion.choices[0].text.trim(), /^-?\d+$/);
const streamed = client.chat.completions.stream({ model, messages, seed: 4, max_tokens: 1500,
  response_format: { type: 'json_schema', json_schema: { name: 'enums', schema: schemas.enums } } });
const final = await streamed.finalChatCompletion();
assert.ok(ajv.validate(schemas.enums, JSON.parse(final.choices[0].message.content)));

await expectStatus(400, client.chat.completions.create({ model, messages, grammar: 'root ::= "unterminated' }), /grammar/);
await expectStatus(400, client.chat.completions.create({ model, messages, grammar: 'root ::= "a"{1,1000000}' }),
  /repeats/);
await expectStatus(400, client.chat.completions.create({ model, messages, grammar: 'root ::= "a"',
  json_schema: { type: 'object' } }), /exclude/);
await expectStatus(400, client.chat.completions.create({ model, messages,
  response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', $ref: '#/nowhere' } } } }),
  /schema/);
await expectStatus(400, client.chat.completions.create({ model, messages, response_format: { type: 'xml' } }),
  /response_format/);
console.log('structured output: json_object, grammar, completions json_schema, streamed, 5 refusals: ok');

// --- Tools.
const weather = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'], additionalProperties: false },
  },
};
const time = {
  type: 'function',
  function: { name: 'get_time', description: 'The time in a zone',
    parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 8 } }, required: ['zone'] } },
};
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
const validateWeather = ajv.compile(weather.function.parameters);

const required = await client.chat.completions.create({ model, messages: ask, tools: [weather, time],
  tool_choice: 'required', parallel_tool_calls: false, temperature: 0 });
const call = required.choices[0].message.tool_calls;
assert.equal(required.choices[0].finish_reason, 'tool_calls');
assert.equal(call.length, 1);
assert.match(call[0].id, /^call_/);
assert.ok(['get_weather', 'get_time'].includes(call[0].function.name));
JSON.parse(call[0].function.arguments);

const named = await client.chat.completions.create({ model, messages: ask, tools: [weather, time],
  tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false, seed: 9 });
const namedCall = named.choices[0].message.tool_calls[0];
assert.equal(namedCall.function.name, 'get_weather');
assert.ok(validateWeather(JSON.parse(namedCall.function.arguments)), namedCall.function.arguments);
assert.equal(named.choices[0].message.content, null);

// Streamed tool calls assemble, with the client's own accumulator, into the same call.
const toolStream = client.chat.completions.stream({ model, messages: ask, tools: [weather, time],
  tool_choice: 'required', parallel_tool_calls: false, temperature: 0 });
let deltas = 0;
toolStream.on('chunk', (c) => { if (c.choices[0]?.delta?.tool_calls) deltas += 1; });
const assembled = await toolStream.finalChatCompletion();
const streamedCall = assembled.choices[0].message.tool_calls;
assert.equal(assembled.choices[0].finish_reason, 'tool_calls');
assert.equal(streamedCall.length, 1);
assert.equal(streamedCall[0].function.name, call[0].function.name);
assert.equal(streamedCall[0].function.arguments, call[0].function.arguments);
assert.ok(deltas > 1, `the call came in ${deltas} delta(s)`);

// runTools: the helper calls our function with the parsed arguments and sends its result back.
const calledWith = [];
const runner = client.chat.completions.runTools({
  model, messages: ask, parallel_tool_calls: false, seed: 5,
  tool_choice: { type: 'function', function: { name: 'get_weather' } },
  tools: [{ type: 'function', function: { ...weather.function, parse: JSON.parse,
    function: (args) => { calledWith.push(args); return { temperature: 21, unit: args.unit }; } } }],
});
const result = await runner.finalFunctionToolCallResult();
assert.equal(calledWith.length, 1);
assert.ok(validateWeather(calledWith[0]), JSON.stringify(calledWith[0]));
assert.equal(JSON.parse(result).temperature, 21);
// The history the loop built (assistant tool_calls, then the tool's result) is a valid
// conversation to go on with.
const history = runner.messages;
assert.deepEqual(history.slice(-2).map((m) => m.role), ['assistant', 'tool']);
const answer = await client.chat.completions.create({ model, messages: history, tools: [weather], tool_choice: 'none',
  max_tokens: 8, temperature: 0 });
assert.equal(answer.choices[0].message.tool_calls, undefined);
assert.ok(answer.usage.prompt_tokens > required.usage.prompt_tokens, 'the tool result is not in the prompt');

// auto: a random model may or may not call; either way the reply is well formed.
const auto = await client.chat.completions.create({ model, messages: ask, tools: [weather], max_tokens: 16, seed: 1 });
assert.ok(['stop', 'length', 'tool_calls'].includes(auto.choices[0].finish_reason));

await expectStatus(400, client.chat.completions.create({ model, messages: ask, tools: [{ type: 'retrieval' }] }), /tools/);
await expectStatus(400, client.chat.completions.create({ model, messages: ask, tools: [weather],
  tool_choice: { type: 'function', function: { name: 'nope' } } }), /tool_choice/);
await expectStatus(400, client.chat.completions.create({ model, messages: ask, tools: [weather],
  grammar: 'root ::= "x"' }), /grammar/);
await expectStatus(400, client.chat.completions.create({ model, messages: ask, tool_choice: 'required' }), /tools/);
await expectStatus(400, client.completions.create({ model, prompt: 'x', tools: [weather] }), /chat completions/);
await expectStatus(400, client.chat.completions.create({ model, messages: [{ role: 'tool', content: 'x' }] }),
  /tool_call_id/);
console.log('tools: required, named, streamed, runTools loop and 6 refusals: ok');
