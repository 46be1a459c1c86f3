#!/usr/bin/env bash
# End-to-end: every KServe v2 route of `kapsl serve`, driven with curl, on a tiny model
# repository (ONNX test_add: sum = x + y, float32 [3, 4, 5]).
source "$(dirname "$0")/lib.sh"
REPO=$TMP/repo
make_repo "$REPO"
start_server "$REPO" --max-models 3

# --- Health and server metadata
http 200 GET /v2/health/live
expect_json .live true
http 200 GET /v2/health/ready
http 200 GET /v2
expect_json .name '"kapsl"'
expect_json '.extensions | index("binary_tensor_data") != null' true

# --- Repository index: model files, folders and .aimod packages side by side; the symbolic
# link to a file outside the root and the folder whose manifest has a misspelt key are not
# models (the log names the key)
http 200 POST /v2/repository/index -d "{}"
expect_json '[.[].name]' '["add","adder","chat","embed","encoder","packed","tiny"]'
expect_json '[.[] | select(.name == "add") | .state]' '["UNLOADED"]'
expect_json '[.[] | select(.name == "packed") | .version]' '["5"]'
grep -q 'skipping .*typo.*max_concurency' "$LOG" || fail "the misspelt manifest key is not named in the log"

# --- Readiness before and after a load
http 503 GET /v2/models/add/ready
expect_json .ready false
http 200 GET /v2/models/add
expect_json .platform '"onnxruntime_onnx"'
expect_json '[.inputs[].name]' '["x","y"]'
expect_json '.outputs[0].datatype' '"FP32"'
expect_json '.outputs[0].shape' '[3,4,5]'
http 200 GET /v2/models/add/ready
expect_json .ready true
http 200 GET /v2/models/adder/versions/2
expect_json .versions '["2"]'
# The manifest asks for cuda then cpu: without a CUDA device it runs on CPU, and says why.
if ! command -v nvidia-smi > /dev/null; then
  expect_json .load_report.provider '"cpu"'
  expect_json '.load_report.failures[0].provider' '"cuda"'
  expect_json '.load_report.failures[0].reason | length > 0' true
fi
http 200 GET /v2/models/packed
expect_json .versions '["5"]'
expect_json .load_report.backend '"onnx"'
http 404 GET /v2/models/adder/versions/7
http 200 GET /v2/models/adder/versions/2/ready

# --- JSON inference (flat and nested data)
xs=$(seq 0 59 | paste -sd, -)
ys=$(for i in $(seq 0 59); do echo -n "0.5,"; done | sed 's/,$//')
REQ='{"id":"r1","inputs":[{"name":"x","shape":[3,4,5],"datatype":"FP32","data":['$xs']},
      {"name":"y","shape":[3,4,5],"datatype":"FP32","data":['$ys']}]}'
http 200 POST /v2/models/add/infer -H 'Content-Type: application/json' -d "$REQ"
expect_json .id '"r1"'
expect_json .model_name '"add"'
expect_json '.outputs[0].name' '"sum"'
expect_json '.outputs[0].shape' '[3,4,5]'
expect_json '.outputs[0].data[0:3]' '[0.5,1.5,2.5]'
expect_json '.outputs[0].data[59]' '59.5'
http 200 POST /v2/models/adder/versions/2/infer -d "$REQ"
expect_json .model_version '"2"'
http 200 POST /v2/models/packed/infer -d "$REQ"
expect_json '.outputs[0].data[59]' '59.5'
NESTED=$(/usr/bin/python3 -c '
import json
x = [[[float(i*20+j*5+k) for k in range(5)] for j in range(4)] for i in range(3)]
print(json.dumps({"inputs": [{"name": "x", "shape": [3,4,5], "datatype": "FP32", "data": x},
                             {"name": "y", "shape": [3,4,5], "datatype": "FP32", "data": x}],
                  "outputs": [{"name": "sum"}]}))')
http 200 POST /v2/models/add/infer -d "$NESTED"
expect_json '.outputs[0].data[59]' '118'

# --- Binary tensor data extension, binary in and binary out
/usr/bin/python3 - "$TMP" <<'PY'
import json, struct, sys
tmp = sys.argv[1]
header = json.dumps({"inputs": [
    {"name": "x", "shape": [3, 4, 5], "datatype": "FP32", "parameters": {"binary_data_size": 240}},
    {"name": "y", "shape": [3, 4, 5], "datatype": "FP32", "parameters": {"binary_data_size": 240}}],
    "outputs": [{"name": "sum", "parameters": {"binary_data": True}}]}).encode()
data = struct.pack("<60f", *range(60)) + struct.pack("<60f", *([2.0] * 60))
open(tmp + "/bin.req", "wb").write(header + data)
open(tmp + "/bin.len", "w").write(str(len(header)))
PY
curl -sS -D "$TMP/bin.headers" -o "$TMP/bin.resp" -X POST "$BASE/v2/models/add/infer" \
  -H "Inference-Header-Content-Length: $(cat "$TMP/bin.len")" -H 'Content-Type: application/octet-stream' \
  --data-binary @"$TMP/bin.req" || fail "binary request"
grep -qi '^HTTP/1.1 200' "$TMP/bin.headers" || fail "binary request: $(head -1 "$TMP/bin.headers")"
HLEN=$(sed -n 's/^Inference-Header-Content-Length: *\([0-9]*\).*/\1/Ip' "$TMP/bin.headers")
[ -n "$HLEN" ] || fail "binary response has no Inference-Header-Content-Length"
/usr/bin/python3 - "$TMP/bin.resp" "$HLEN" <<'PY' || fail "binary response content"
import json, struct, sys
body = open(sys.argv[1], "rb").read()
n = int(sys.argv[2])
header = json.loads(body[:n])
out = header["outputs"][0]
assert out["parameters"]["binary_data_size"] == 240, out
values = struct.unpack("<60f", body[n:n + 240])
assert values == tuple(float(i) + 2.0 for i in range(60)), values[:5]
assert len(body) == n + 240
PY

# --- Bad input: 4xx with a message, and the server keeps serving
http 400 POST /v2/models/add/infer -d '{"inputs": ['
expect_json '.error | test("JSON")' true
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[3,4,5],"datatype":"FP32","data":[1,2]}]}'
expect_json '.error | test("60 elements")' true
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[3,4,5],"datatype":"INT64","data":['$xs']},{"name":"y","shape":[3,4,5],"datatype":"FP32","data":['$ys']}]}'
expect_json '.error | test("dtype|type")' true
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[2,5],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10]},{"name":"y","shape":[2,5],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10]}]}'
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[1],"datatype":"NOPE","data":[1]}]}'
expect_json '.error | test("datatype")' true
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[300]}]}'
http 400 POST /v2/models/add/infer -H 'Inference-Header-Content-Length: 99999' -d '{}'
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}'
http 404 POST /v2/models/nosuch/infer -d "$REQ"
expect_json '.error | test("unknown model")' true
http 404 GET /v2/models/nosuch
http 404 GET /v2/nosuch
expect_json '.error | test("no route")' true
# Model names never reach files outside the repository root.
http 404 GET /v2/models/../ready
http 404 GET /v2/models/..%2F..%2Fetc%2Fpasswd
http 404 GET /v2/models/%2Fetc%2Fpasswd/ready
http 404 POST /v2/models/..%2Fadd/infer -d "$REQ"
http 404 POST /v2/repository/models/..%2F..%2Ftmp/load -d "{}"
http 404 GET /v2/models/outside
# A body over --max-body-mib (1 MiB here is the default 64; send 65 MiB of zeros is slow,
# so the limit test runs against a second server below).
http 200 POST /v2/models/add/infer -d "$REQ"

# --- Repository extension: unload disables, load enables and pins
http 200 POST /v2/repository/models/add/unload -d "{}"
http 503 GET /v2/models/add/ready
expect_json .state '"UNAVAILABLE"'
http 503 POST /v2/models/add/infer -d "$REQ"
expect_json '.error | test("unloaded")' true
http 200 POST /v2/repository/models/add/load -d "{}"
http 200 GET /v2/models/add/ready
http 200 POST /v2/models/add/infer -d "$REQ"
http 200 POST /v2/repository/index -d '{"ready": true}'
expect_json '[.[].name] | index("add") != null' true
http 404 POST /v2/repository/models/nosuch/load -d "{}"

# --- The server is still healthy after all of that
http 200 GET /v2/health/live
stop_server
grep -q '"request_id"' "$LOG" || fail "no structured request log lines"

# --- Body size limit and API key, on a second server
# Written as Windows editors do, with spaces around: the key is the trimmed first line.
printf '  secret-key \r\n' > "$TMP/key"
start_server "$REPO" --max-body-mib 1 --api-key-file "$TMP/key"
http 200 GET /v2/health/live
http 401 GET /v2/health/ready
http 401 GET /v2/health/ready -H 'Authorization: Bearer wrong'
http 401 GET /metrics
http 200 GET /v2/health/ready -H 'Authorization: Bearer secret-key'
http 200 GET /v2/health/ready -H 'Authorization: bearer secret-key'
head -c 2000000 /dev/zero > "$TMP/big"
http 413 POST /v2/models/add/infer -H 'Authorization: Bearer secret-key' --data-binary @"$TMP/big"
http 200 POST /v2/models/add/infer -H 'Authorization: Bearer secret-key' -d "$REQ"
echo "kserve e2e: ok"
