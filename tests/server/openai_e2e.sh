#!/usr/bin/env bash
# End-to-end: the OpenAI-compatible API, driven by the official openai npm client
# (installed by the openai_npm CTest fixture into OPENAI_NODE_MODULES).
source "$(dirname "$0")/lib.sh"
: "${OPENAI_NODE_MODULES:?set OPENAI_NODE_MODULES to the node_modules holding openai}"
REPO=$TMP/repo
make_repo "$REPO"
start_server "$REPO" --max-concurrency 1 --max-queue 0 --ctx-size 4096 --parallel 3
KAPSL_BASE=$BASE node "$(dirname "$0")/openai_client_test.mjs" || fail "openai client test"
KAPSL_BASE=$BASE node "$(dirname "$0")/anthropic_client_test.mjs" || fail "anthropic client test"
KAPSL_BASE=$BASE node "$(dirname "$0")/openai_tools_test.mjs" || fail "openai tools and structured output test"
KAPSL_BASE=$BASE node "$(dirname "$0")/openai_sampling_test.mjs" || fail "openai sampling outputs test"
KAPSL_BASE=$BASE node "$(dirname "$0")/agent_apis_test.mjs" || fail "responses and messages tools test"
http 200 GET /v2/health/live

# --- llama-server's text utilities, with its shapes.
http 200 POST /tokenize -d '{"model":"tiny","content":"Hello world"}'
TOKENS=$(printf '%s' "$BODY" | jq -c .tokens)
n=$(printf '%s' "$BODY" | jq '.tokens | length')
[ "$n" -ge 2 ] || fail "tokenize gave $BODY"
http 200 POST /tokenize -d '{"model":"tiny","content":"Hello world","add_special":true}'
[ "$(printf '%s' "$BODY" | jq '.tokens | length')" = $((n + 1)) ] || fail "add_special added no BOS: $BODY"
http 200 POST /detokenize -d "{\"model\":\"tiny\",\"tokens\":$TOKENS}"
printf '%s' "$BODY" | jq -e '.content | test("Hello world")' > /dev/null || fail "detokenize gave $BODY"
http 200 POST /tokenize -d '{"model":"tiny","content":["Hello", 5],"with_pieces":true}'
printf '%s' "$BODY" | jq -e '(.tokens | last) == {"id": 5, "piece": .tokens[-1].piece} and (.tokens[0].piece | type) == "string"' \
  > /dev/null || fail "tokenize with pieces gave $BODY"
http 200 POST /apply-template -d '{"model":"chat","messages":[{"role":"user","content":"hi there"}]}'
printf '%s' "$BODY" | jq -e '.prompt | test("<\\|user\\|>") and test("hi there")' > /dev/null || fail "apply-template gave $BODY"
http 200 POST /apply-template -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}]}'  # no template: chatml
expect_json .prompt '"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"'
http 200 POST /apply-template -d '{"model":"chat","chat_template":"llama3","messages":[{"role":"user","content":"hi"}]}'
printf '%s' "$BODY" | jq -e '.prompt | test("start_header_id")' > /dev/null || fail "a named template was not used: $BODY"
http 400 POST /tokenize -d '{"content":"x"}'  # three text models: which one?
printf '%s' "$BODY" | grep -q "model" || fail "no model named: $BODY"
http 400 POST /tokenize -d '{"model":"tiny","content":"x","bogus":1}'
http 400 POST /detokenize -d '{"model":"tiny","tokens":[-1]}'
http 400 POST /tokenize -d '{"model":"add","content":"x"}'
http 404 POST /apply-template -d '{"model":"nope","messages":[]}'
echo "llama-server utilities: ok"

# --- Graceful shutdown: SIGTERM with a generation in flight. New requests get 503, the
# stream is cancelled after --shutdown-timeout and still ends with [DONE], the server exits 0.
stop_server
start_server "$REPO" --shutdown-timeout 1
curl -sS -N -o "$TMP/stream.txt" "$BASE/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"tiny","prompt":"Count:","max_tokens":2000,"ignore_eos":true,"stream":true}' &
CURL_PID=$!
for _ in $(seq 1 100); do grep -q '"text"' "$TMP/stream.txt" 2>/dev/null && break; sleep 0.1; done
grep -q '"text"' "$TMP/stream.txt" || fail "the stream did not start"
kill -TERM "$SERVER_PID"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v2/health/ready" || true)
[ "$code" = 503 ] || [ "$code" = 000 ] || fail "readiness while draining: $code"
wait "$CURL_PID" || fail "the streaming client failed"
wait "$SERVER_PID" || fail "the server exited with $?"
SERVER_PID=
tail -c 200 "$TMP/stream.txt" | grep -q 'data: \[DONE\]' || fail "the cancelled stream did not end with [DONE]"
grep -q 'kapsl serve: stopped' "$LOG" || fail "no clean stop in the log"
echo "graceful shutdown: ok"
