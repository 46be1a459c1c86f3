# Helpers for the server's end-to-end tests (sourced). Each test builds a tiny model
# repository, starts `kapsl serve` on a free loopback port (--port 0; the port is read from
# the server's start-up line) and drives it with real clients, as Triton's qa/L0_* do.
# Environment: KAPSL (the kapsl binary), KAPSL_TEST_DATA (the generated GGUF models).
set -euo pipefail
# A command that fails outside a check still says where, instead of ending the test silently.
trap 'echo "FAIL: ${BASH_SOURCE[0]}:$LINENO: a command exited with status $?" >&2' ERR
: "${KAPSL:?set KAPSL to the kapsl binary}"
: "${KAPSL_TEST_DATA:?set KAPSL_TEST_DATA to the generated test models}"
ONNX_ADD=/usr/share/libonnx-testdata/data/node/test_add/model.onnx
TMP=$(mktemp -d)
SERVER_PID=

fail() {
  echo "FAIL: $*" >&2
  [ -n "${LOG:-}" ] && { echo "--- server log (last 40 lines)" >&2; tail -40 "$LOG" >&2; }
  exit 1
}

# make_repo DIR: the ONNX adder as a bare file ("add"), a folder with metadata.json asking
# for cuda then cpu (version 2, "adder") and an .aimod package ("packed"); a tiny BERT-style
# encoder with the embed task and a WordPiece vocabulary ("encoder"); three GGUF models; a
# folder whose manifest has a misspelt key and a symbolic link to a file outside the root,
# both skipped.
make_repo() {
  local repo=$1
  mkdir -p "$repo/adder" "$repo/encoder" "$repo/typo" "$TMP/packed"
  cp "$ONNX_ADD" "$repo/add.onnx"
  cp "$ONNX_ADD" "$repo/adder/model.onnx"
  cat > "$repo/adder/metadata.json" <<'JSON'
{"project_name": "adder", "framework": "onnx", "version": "2", "created_at": "2026-01-01", "model_file": "model.onnx",
 "hardware_requirements": {"preferred_provider": "cuda", "fallback_providers": ["cpu"]}}
JSON
  cp "$ONNX_ADD" "$TMP/packed/model.onnx"
  cat > "$TMP/packed/metadata.json" <<'JSON'
{"project_name": "packed", "framework": "onnx", "version": "5", "created_at": "2026-01-01", "model_file": "model.onnx",
 "serving": {"max_concurrency": 2}}
JSON
  tar -czf "$repo/packed.aimod" -C "$TMP/packed" metadata.json model.onnx
  /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../../scripts/make-encoder-onnx.py" "$repo/encoder/model.onnx" \
    1 32 2 64 64 > /dev/null
  { printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\ngood\n##bye\n'; for i in $(seq 8 63); do echo "w$i"; done; } \
    > "$repo/encoder/vocab.txt"
  cat > "$repo/encoder/metadata.json" <<'JSON'
{"project_name": "encoder", "framework": "onnx", "version": "1", "created_at": "2026-01-01", "model_file": "model.onnx",
 "task": "embed", "onnx": {"tokenizer": {"vocab": "vocab.txt"}}}
JSON
  cp "$ONNX_ADD" "$repo/typo/model.onnx"
  cat > "$repo/typo/metadata.json" <<'JSON'
{"project_name": "typo", "framework": "onnx", "version": "1", "created_at": "", "model_file": "model.onnx",
 "serving": {"max_concurency": 2}}
JSON
  cp "$KAPSL_TEST_DATA/tiny-spm.gguf" "$repo/tiny.gguf"
  cp "$KAPSL_TEST_DATA/tiny-phi3.gguf" "$repo/chat.gguf"
  cp "$KAPSL_TEST_DATA/tiny-embed.gguf" "$repo/embed.gguf"
  ln -s "$ONNX_ADD" "$repo/outside.onnx"
}

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
  fi
  SERVER_PID=
}

cleanup() {
  stop_server
  rm -rf "$TMP"
}
trap cleanup EXIT

# start_server REPO [kapsl serve flags...]: sets SERVER_PID, PORT, BASE and LOG.
start_server() {
  local repo=$1
  shift
  start_kapsl --models "$repo" --port 0 --threads 1 "$@"
}

# start_kapsl [kapsl serve flags...]: as start_server, every flag given (--port 0 among them).
start_kapsl() {
  LOG=$TMP/server.log
  "$KAPSL" serve "$@" > "$LOG" 2>&1 &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 1 600); do
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$LOG" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited during start-up"
    sleep 0.1
  done
  [ -n "$PORT" ] || fail "the server did not start"
  BASE=http://127.0.0.1:$PORT
}

# http STATUS METHOD PATH [curl args...]: runs the request, checks the status, leaves the
# body in $TMP/body and $BODY.
http() {
  local expect=$1 method=$2 path=$3
  shift 3
  local code
  code=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" --path-as-is "$@" "$BASE$path") || fail "curl $method $path failed"
  BODY=$(cat "$TMP/body")
  [ "$code" = "$expect" ] || fail "$method $path: expected HTTP $expect, got $code: $BODY"
}

# expect_json FILTER VALUE: jq FILTER on $BODY must print VALUE.
expect_json() {
  local got
  got=$(printf '%s' "$BODY" | jq -c "$1") || fail "not JSON: $BODY"
  [ "$got" = "$2" ] || fail "jq '$1': expected $2, got $got (body: $BODY)"
}
