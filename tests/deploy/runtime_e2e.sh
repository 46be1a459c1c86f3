#!/usr/bin/env bash
# The runtime image's contents, tested here since Docker cannot run on these machines: the
# tree deploy/stage-runtime makes (what deploy/Dockerfile copies into the image), the Debian
# packages the image installs (deploy/runtime-packages) against what the binaries need, and
# that tree serving models in each layout KServe's storage initializer leaves at
# /mnt/models, started with the ServingRuntime's own args.
# Environment: KAPSL, KAPSL_TEST_DATA (lib.sh), BUILD_DIR (the CMake build to install),
# DEPLOY_NODE_MODULES (ajv, js-yaml), KAPSL_SANITIZE (set: the package check is skipped).
source "$(dirname "$0")/../server/lib.sh"
: "${BUILD_DIR:?set BUILD_DIR to the CMake build tree}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STAGE=$TMP/stage

# --- The runtime tree, and the packages its libraries come from
"$ROOT/deploy/stage-runtime" "$BUILD_DIR" "$STAGE" || fail "deploy/stage-runtime"
KAPSL=$STAGE/bin/kapsl
env -u LD_LIBRARY_PATH "$KAPSL" --version > /dev/null || fail "the installed kapsl does not run from its own tree"
if [ -n "${KAPSL_SANITIZE:-}" ]; then
  echo "runtime packages: not checked in a $KAPSL_SANITIZE build (its runtime is not the image's)"
else
  mapfile -t allowed < <(grep -v '^#' "$ROOT/deploy/runtime-packages" | grep -v '^$')
  checked=0
  for bin in "$KAPSL" "$STAGE"/lib/libkapsl.so.*.*.* "$STAGE"/lib/libonnxruntime.so.1; do
    for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
      checked=$((checked + 1))
      [ -e "$STAGE/lib/$lib" ] && continue
      # awk reads everything: an early exit would stop ldconfig with SIGPIPE (pipefail).
      path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ && !seen {print $NF; seen = 1}')
      [ -n "$path" ] || fail "$(basename "$bin") needs $lib, which neither the tree nor the system has"
      pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null) || fail "no package owns $path"
      pkg=${pkg%%:*}
      printf '%s\n' "${allowed[@]}" | grep -qx "$pkg" ||
        fail "$(basename "$bin") needs $lib from package $pkg, which deploy/runtime-packages does not list"
    done
  done
  echo "runtime packages: the $checked libraries the binaries need are in the tree or in deploy/runtime-packages"
fi

# --- The ServingRuntime's args, with the port and address a test may use
mapfile -t ARGS < <(node "$(dirname "$0")/validate_manifests.mjs" "$ROOT/deploy" /dev/null --print-args | jq -r '.[]')
[ "${ARGS[0]}" = serve ] || fail "the ServingRuntime does not run 'kapsl serve': ${ARGS[*]}"
# serve_storage NAME STORAGE: starts the installed kapsl as KServe would, on STORAGE.
serve_storage() {
  local name=$1 storage=$2 args=() a
  for a in "${ARGS[@]:1}"; do
    a=${a//\{\{.Name\}\}/$name}
    a=${a//\/mnt\/models/$storage}
    case $a in --host=*) a=--host=127.0.0.1 ;; --port=*) a=--port=0 ;; esac
    args+=("$a")
  done
  start_kapsl "${args[@]}" --threads 1
}

xs=$(seq 0 59 | paste -sd, -)
REQ='{"inputs":[{"name":"x","shape":[3,4,5],"datatype":"FP32","data":['$xs']},
      {"name":"y","shape":[3,4,5],"datatype":"FP32","data":['$xs']}]}'

# storageUri naming one file: the file inside the mount.
mkdir -p "$TMP/file/models"
cp "$ONNX_ADD" "$TMP/file/models/model.onnx"
serve_storage adder "$TMP/file/models"
http 200 GET /v2/health/ready
http 200 GET /v2/models/adder/ready
http 200 POST /v2/models/adder/infer -d "$REQ"
expect_json .model_name '"adder"'
expect_json '.outputs[0].data[59]' '118'
http 404 GET /v2/models/model/ready
# Pinned by the args: resident before the port opened (the startup probe waits for it).
http 200 POST /v2/repository/index -d '{}'
expect_json '[.[] | {name, state}]' '[{"name":"adder","state":"READY"}]'
t0=$(date +%s%N)
stop_server
echo "file layout: served as 'adder'; stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# storageUri naming a folder holding a manifest: the folder's contents at the mount.
mkdir -p "$TMP/folder/models"
cp "$ONNX_ADD" "$TMP/folder/models/weights.onnx"
cat > "$TMP/folder/models/metadata.json" <<'JSON'
{"project_name": "adder", "framework": "onnx", "version": "4", "created_at": "2026-01-01", "model_file": "weights.onnx",
 "hardware_requirements": {"preferred_provider": "cuda", "fallback_providers": ["cpu"]}}
JSON
serve_storage sum "$TMP/folder/models"
http 200 GET /v2/models/sum
expect_json .versions '["4"]'
expect_json .load_report.provider '"cpu"'
http 200 POST /v2/models/sum/versions/4/infer -d "$REQ"
expect_json '.outputs[0].data[1]' '2'
stop_server
echo "manifest folder layout: served as 'sum', version 4, on the cpu fallback"

# A GGUF file: KServe v2 and the OpenAI API under the InferenceService's name.
mkdir -p "$TMP/gguf/models"
cp "$KAPSL_TEST_DATA/tiny-spm.gguf" "$TMP/gguf/models/"
serve_storage qwen "$TMP/gguf/models"
http 200 GET /v2/models/qwen/ready
http 200 POST /v1/completions -H 'Content-Type: application/json' \
  -d '{"model":"qwen","prompt":"Hello","max_tokens":3,"ignore_eos":true}'
expect_json .model '"qwen"'
expect_json .usage.completion_tokens 3
stop_server
echo "gguf layout: served as 'qwen' over KServe and OpenAI"

# A folder holding two models is a repository: refused at start, naming them.
cp "$ONNX_ADD" "$TMP/gguf/models/extra.onnx"
set +e
"$KAPSL" serve --model "$TMP/gguf/models" --model-name qwen --port 0 > "$TMP/two.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a storage holding two models was served"
grep -q 'holds 2 models (extra.onnx, tiny-spm.gguf)' "$TMP/two.log" || fail "unclear refusal: $(cat "$TMP/two.log")"
echo "two models at the mount: refused ($(tail -1 "$TMP/two.log"))"
