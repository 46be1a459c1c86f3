// Validates every manifest in deploy/kserve/ against KServe's own CustomResourceDefinitions
// (../shared/reference/kserve/), as `kubectl apply --validate=strict` would: the CRD's
// OpenAPI v3 schema for the manifest's apiVersion, with unknown fields refused wherever the
// schema does not preserve them. Then shows that the check has teeth: a misspelt field and a
// value of the wrong type, put into each manifest, must both be refused.
//
// Usage: node validate_manifests.mjs DEPLOY_DIR CRD_DIR [--print-args]
// Environment: DEPLOY_NODE_MODULES, the node_modules holding ajv and js-yaml (from npm).
// With --print-args: prints the ServingRuntime container's args as JSON, for runtime_e2e.sh.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(process.env.DEPLOY_NODE_MODULES + '/');
const Ajv = require('ajv').default;
const yaml = require('js-yaml');

const [deployDir, crdDir, flag] = process.argv.slice(2);
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };
if (!deployDir || !crdDir) fail('usage: validate_manifests.mjs DEPLOY_DIR CRD_DIR [--print-args]');

const manifests = fs.readdirSync(path.join(deployDir, 'kserve')).filter((f) => f.endsWith('.yaml')).sort()
  .map((f) => ({file: `kserve/${f}`, doc: yaml.load(fs.readFileSync(path.join(deployDir, 'kserve', f), 'utf8'))}));

if (flag === '--print-args') {
  const runtime = manifests.find((m) => m.doc.kind === 'ServingRuntime');
  if (!runtime) fail('no ServingRuntime in deploy/kserve');
  console.log(JSON.stringify(runtime.doc.spec.containers[0].args));
  process.exit(0);
}

// The CRDs, by kind.
const crds = new Map();
for (const f of fs.readdirSync(crdDir).filter((f) => /^serving\.kserve\.io_.*\.yaml$/.test(f))) {
  const crd = yaml.load(fs.readFileSync(path.join(crdDir, f), 'utf8'));
  crds.set(crd.spec.names.kind, crd);
}
if (crds.size === 0) fail(`no KServe CRDs in ${crdDir}`);

// Kubernetes prunes or (strict) refuses fields a structural schema does not declare, unless
// x-kubernetes-preserve-unknown-fields says to keep them; JSON Schema allows them. Make
// that explicit, everywhere in the schema.
function strict(schema) {
  if (Array.isArray(schema)) return schema.forEach(strict);
  if (schema === null || typeof schema !== 'object') return;
  if (schema.properties && schema.additionalProperties === undefined &&
      schema['x-kubernetes-preserve-unknown-fields'] !== true) {
    schema.additionalProperties = false;
  }
  Object.values(schema).forEach(strict);
}

const ajv = new Ajv({strict: false, allErrors: true});
for (const name of ['int32', 'int64', 'double', 'float']) ajv.addFormat(name, {type: 'number', validate: () => true});
for (const name of ['byte', 'date-time', 'quantity', 'duration']) ajv.addFormat(name, true);
const validators = new Map();  // "group/version kind" -> validate function

function validatorFor(doc) {
  const crd = crds.get(doc.kind);
  if (!crd) return [null, `kind ${doc.kind} is not a KServe CRD (known: ${[...crds.keys()].join(', ')})`];
  const [group, version] = String(doc.apiVersion).split('/');
  const v = crd.spec.versions.find((x) => x.name === version);
  if (group !== crd.spec.group || !v) return [null, `apiVersion ${doc.apiVersion} is not served by the ${doc.kind} CRD`];
  if (!v.served) return [null, `${doc.apiVersion} ${doc.kind} is not served`];
  const key = `${doc.apiVersion} ${doc.kind}`;
  if (!validators.has(key)) {
    const schema = structuredClone(v.schema.openAPIV3Schema);
    strict(schema);
    validators.set(key, ajv.compile(schema));
  }
  return [validators.get(key), null];
}

// The errors of one manifest ([] if it is valid).
function errorsOf(doc) {
  const [validate, problem] = validatorFor(doc);
  if (problem) return [problem];
  const errors = [];
  const meta = doc.metadata ?? {};
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(meta.name ?? '')) errors.push(`metadata.name '${meta.name}' is not a DNS label`);
  for (const k of Object.keys(meta)) {
    if (!['name', 'namespace', 'labels', 'annotations'].includes(k)) errors.push(`metadata.${k}: unknown field`);
  }
  if (!validate(doc)) {
    for (const e of validate.errors) {
      const extra = e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : '';
      errors.push(`${e.instancePath || '/'}: ${e.message}${extra}`);
    }
  }
  return errors;
}

// Each manifest valid, and each one made wrong refused.
const kinds = new Set();
for (const {file, doc} of manifests) {
  kinds.add(doc.kind);
  const errors = errorsOf(doc);
  if (errors.length) fail(`${file} does not validate against the ${doc.kind} CRD:\n  ${errors.join('\n  ')}`);
  const misspelt = structuredClone(doc);
  const target = doc.kind === 'ServingRuntime' ? misspelt.spec.containers[0] : misspelt.spec.predictor.model;
  target.storageUir = 'pvc://x';
  const wrongType = structuredClone(doc);
  if (doc.kind === 'ServingRuntime') wrongType.spec.protocolVersions = 'v2'; else wrongType.spec.predictor.minReplicas = 'two';
  for (const [what, bad] of [['a misspelt field', misspelt], ['a value of the wrong type', wrongType]]) {
    const found = errorsOf(bad);
    if (!found.length) fail(`${file} with ${what} was accepted: the check has no teeth`);
    console.log(`${file} with ${what}: refused (${found[0]})`);
  }
  console.log(`${file}: valid ${doc.apiVersion} ${doc.kind}`);
}
for (const kind of ['ServingRuntime', 'InferenceService']) {
  if (!kinds.has(kind)) fail(`deploy/kserve has no ${kind}`);
}
const onnx = manifests.filter((m) => m.doc.kind === 'InferenceService' && m.doc.spec.predictor.model?.modelFormat?.name === 'onnx');
const gguf = manifests.filter((m) => m.doc.kind === 'InferenceService' && m.doc.spec.predictor.model?.modelFormat?.name === 'gguf');
if (!onnx.length || !gguf.length) fail('deploy/kserve needs an example InferenceService for ONNX and one for GGUF');
console.log(`${manifests.length} manifests valid against KServe's CRDs`);
