// KServe v2 over gRPC, driven by an independent client: @grpc/grpc-js with
// @grpc/proto-loader, loading KServe's own published .proto for the protocol's six methods
// and the project's .proto only for the repository extension (absent from KServe's).
// Environment: GRPC_ADDR (host:port), KSERVE_PROTO (KServe's grpc_predict_v2.proto),
// KAPSL_PROTO (ours), API_KEY (the server's key), HTTP_BASE (for /metrics).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(process.env.GRPC_NODE_MODULES + '/');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const load = (file) => {
  const def = protoLoader.loadSync(file, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  return grpc.loadPackageDefinition(def).inference.GRPCInferenceService;
};
const Reference = load(process.env.KSERVE_PROTO);
const Ours = load(process.env.KAPSL_PROTO);
const addr = process.env.GRPC_ADDR;
const key = process.env.API_KEY;

const auth = new grpc.Metadata();
auth.set('authorization', `Bearer ${key}`);
const call = (client, method, request, metadata = auth, options = {}) =>
  new Promise((resolve, reject) => client[method](request, metadata, options, (err, res) => (err ? reject(err) : resolve(res))));
const code = async (promise) => {
  try {
    await promise;
    return grpc.status.OK;
  } catch (e) {
    return e.code;
  }
};

const v2 = new Reference(addr, grpc.credentials.createInsecure());
const repo = new Ours(addr, grpc.credentials.createInsecure());
let checks = 0;
const check = (name) => { checks++; console.log(`ok: ${name}`); };

// --- Health and metadata; the key is required.
assert.equal(await code(call(v2, 'ServerLive', {}, new grpc.Metadata())), grpc.status.UNAUTHENTICATED);
const wrong = new grpc.Metadata();
wrong.set('authorization', 'Bearer nope');
assert.equal(await code(call(v2, 'ServerReady', {}, wrong)), grpc.status.UNAUTHENTICATED);
assert.equal((await call(v2, 'ServerLive', {})).live, true);
assert.equal((await call(v2, 'ServerReady', {})).ready, true);
const server = await call(v2, 'ServerMetadata', {});
assert.equal(server.name, 'kapsl');
assert.ok(server.extensions.includes('model_repository'));
check('ServerLive, ServerReady, ServerMetadata; UNAUTHENTICATED without the key');

// --- Model metadata and readiness.
assert.equal((await call(v2, 'ModelReady', { name: 'add' })).ready, false);  // not loaded yet
const meta = await call(v2, 'ModelMetadata', { name: 'add' });
assert.deepEqual(meta.versions, ['1']);
assert.equal(meta.platform, 'onnxruntime_onnx');
assert.deepEqual(meta.inputs.map((t) => [t.name, t.datatype, t.shape]), [['x', 'FP32', ['3', '4', '5']], ['y', 'FP32', ['3', '4', '5']]]);
assert.equal((await call(v2, 'ModelReady', { name: 'add' })).ready, true);  // metadata loaded it
assert.equal(await code(call(v2, 'ModelReady', { name: 'nope' })), grpc.status.NOT_FOUND);
assert.equal(await code(call(v2, 'ModelMetadata', { name: 'add', version: '7' })), grpc.status.NOT_FOUND);
check('ModelMetadata, ModelReady; NOT_FOUND for unknown models and versions');

// --- Inference, typed contents in and out.
const xs = Array.from({ length: 60 }, (_, i) => i / 4);
const typed = await call(v2, 'ModelInfer', {
  model_name: 'add', id: 'typed-1',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4, 5], contents: { fp32_contents: xs } },
           { name: 'y', datatype: 'FP32', shape: [3, 4, 5], contents: { fp32_contents: xs } }],
});
assert.equal(typed.id, 'typed-1');
assert.equal(typed.model_name, 'add');
assert.equal(typed.outputs[0].datatype, 'FP32');
assert.deepEqual(typed.outputs[0].shape, ['3', '4', '5']);
assert.deepEqual(typed.outputs[0].contents.fp32_contents, xs.map((v) => 2 * v));
assert.equal(typed.raw_output_contents.length, 0);
check('ModelInfer with typed contents');

// --- Inference, raw contents in and out (little-endian float32).
const raw = Buffer.from(new Float32Array(xs).buffer);
const rawRes = await call(v2, 'ModelInfer', {
  model_name: 'add', model_version: '1',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4, 5] }, { name: 'y', datatype: 'FP32', shape: [3, 4, 5] }],
  raw_input_contents: [raw, raw],
  outputs: [{ name: 'sum' }],
});
assert.equal(rawRes.raw_output_contents.length, 1);
const out = rawRes.raw_output_contents[0];
assert.equal(out.length, 240);
const sums = Array.from({ length: 60 }, (_, i) => out.readFloatLE(4 * i));
assert.deepEqual(sums, xs.map((v) => 2 * v));
check('ModelInfer with raw contents, one requested output');

// --- A text generator over KServe: BYTES typed contents and generation parameters.
const gen = await call(v2, 'ModelInfer', {
  model_name: 'tiny',
  inputs: [{ name: 'prompt', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('Hello')] } }],
  parameters: { max_tokens: { int64_param: 3 }, temperature: { string_param: '0' } },
});
assert.equal(gen.outputs[0].datatype, 'BYTES');
assert.equal(gen.outputs[0].contents.bytes_contents.length, 1);
check('ModelInfer on a GGUF model: BYTES contents, parameters');

// --- Bad requests: INVALID_ARGUMENT naming the problem.
const bad = async (request, needle) => {
  try {
    await call(v2, 'ModelInfer', request);
    assert.fail('accepted: ' + JSON.stringify(request).slice(0, 200));
  } catch (e) {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT, e.details);
    assert.ok(e.details.includes(needle), `${e.details} lacks ${needle}`);
  }
};
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4, 5], contents: { fp32_contents: [1] } }] },
          'needs 60 values');
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4, 5], contents: { int64_contents: xs } }] },
          'fp32_contents');
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }], raw_input_contents: [Buffer.alloc(3)] },
          'bytes');
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'FP32', shape: [4000000000, 4000000000, 4000000000] },
                                        { name: 'y', datatype: 'FP32', shape: [1] }],
            raw_input_contents: [Buffer.alloc(4), Buffer.alloc(4)] }, 'input');
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'INT8', shape: [1], contents: { int_contents: [300] } }] },
          'out of range');
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'F32', shape: [1], contents: { fp32_contents: [1] } }] },
          'unknown datatype');
await bad({ model_name: 'add', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4, 5], contents: { fp32_contents: xs } }],
            parameters: { max_tokens: { int64_param: 3 } } }, 'max_tokens');
check('INVALID_ARGUMENT for short, mistyped, oversized, out-of-range and unknown inputs');

// --- A deadline the generation cannot meet ends it with DEADLINE_EXCEEDED.
const long = { model_name: 'tiny',
  inputs: [{ name: 'prompt', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('Count:')] } }],
  parameters: { max_tokens: { int64_param: 3000 }, ignore_eos: { bool_param: true } } };
assert.equal(await code(call(v2, 'ModelInfer', long, auth, { deadline: Date.now() + 300 })), grpc.status.DEADLINE_EXCEEDED);
check('DEADLINE_EXCEEDED for a call past its gRPC deadline');

// --- Repository extension (our .proto).
const index = await call(repo, 'RepositoryIndex', {});
const byName = Object.fromEntries(index.models.map((m) => [m.name, m.state]));
assert.equal(byName.add, 'READY');
assert.ok('tiny' in byName && 'encoder' in byName);
const readyOnly = await call(repo, 'RepositoryIndex', { ready: true });
assert.ok(readyOnly.models.every((m) => m.state === 'READY'));
await call(repo, 'RepositoryModelUnload', { model_name: 'add' });
assert.equal((await call(v2, 'ModelReady', { name: 'add' })).ready, false);
assert.equal(await code(call(v2, 'ModelInfer', { model_name: 'add' })), grpc.status.UNAVAILABLE);
await call(repo, 'RepositoryModelLoad', { model_name: 'add' });
assert.equal((await call(v2, 'ModelReady', { name: 'add' })).ready, true);
assert.equal(await code(call(repo, 'RepositoryModelLoad', { model_name: 'nope' })), grpc.status.NOT_FOUND);
assert.equal(await code(call(repo, 'RepositoryIndex', { repository_name: 'elsewhere' })), grpc.status.NOT_FOUND);
check('RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload');

// --- The calls are in the server's metrics.
const metrics = await (await fetch(process.env.HTTP_BASE + '/metrics', { headers: { authorization: `Bearer ${key}` } })).text();
const value = (series) => Number((metrics.split('\n').find((l) => l.startsWith(series + ' ')) ?? ' NaN').split(' ')[1]);
assert.ok(value('kapsl_grpc_responses_total{code="OK"}') >= 15, metrics.slice(0, 400));
assert.equal(value('kapsl_grpc_responses_total{code="UNAUTHENTICATED"}'), 2);
assert.equal(value('kapsl_inference_requests_total{model="add",outcome="success"}'), 2);
assert.ok(value('kapsl_inference_requests_total{model="add",outcome="client_error"}') >= 6);
// The deadline passed and the client left at once: the generation ended as either.
assert.equal(value('kapsl_inference_requests_total{model="tiny",outcome="timeout"}') +
             value('kapsl_inference_requests_total{model="tiny",outcome="cancelled"}'), 1);
check('gRPC calls counted in /metrics');

v2.close();
repo.close();
console.log(`grpc client test: ${checks} groups passed`);
