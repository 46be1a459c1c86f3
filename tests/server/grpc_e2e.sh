#!/usr/bin/env bash
# End-to-end: KServe v2 over gRPC (`kapsl serve --grpc-port`), driven by @grpc/grpc-js with
# KServe's own .proto (installed by the grpc_npm CTest fixture into GRPC_NODE_MODULES), with
# an API key; then the project's .proto checked against KServe's field by field.
source "$(dirname "$0")/lib.sh"
: "${GRPC_NODE_MODULES:?set GRPC_NODE_MODULES to the node_modules holding @grpc/grpc-js}"
: "${KSERVE_PROTO:?set KSERVE_PROTO to the KServe grpc_predict_v2.proto}"
HERE=$(cd "$(dirname "$0")" && pwd)
KAPSL_PROTO=$HERE/../../proto/grpc_predict_v2.proto
/usr/bin/python3 "$HERE/grpc_proto_check.py" "$KAPSL_PROTO" "$KSERVE_PROTO" || fail "proto check"
REPO=$TMP/repo
make_repo "$REPO"
export KAPSL_API_KEY=grpc-test-key
start_server "$REPO" --grpc-port 0 --ctx-size 4096
GRPC_PORT=$(sed -n 's|.*KServe v2 over gRPC on 127\.0\.0\.1:\([0-9]*\).*|\1|p' "$LOG" | head -1)
[ -n "$GRPC_PORT" ] || fail "no gRPC port in the log"
GRPC_ADDR=127.0.0.1:$GRPC_PORT KAPSL_PROTO=$KAPSL_PROTO API_KEY=$KAPSL_API_KEY HTTP_BASE=$BASE \
  node "$HERE/grpc_client_test.mjs" || fail "grpc client test"
# kapsl bench --url drives every protocol: a line per concurrency level, no errors.
for protocol in http binary grpc; do
  url=$BASE
  [ "$protocol" = grpc ] && url=127.0.0.1:$GRPC_PORT
  "$KAPSL" bench --url "$url" --model add --protocol "$protocol" -C 1,3 -r 30 -w 1 > "$TMP/bench.txt" 2>&1 ||
    fail "bench --url over $protocol: $(cat "$TMP/bench.txt")"
  [ "$(grep -c '^concurrency [13]: .* infer/s, .* 0 errors$' "$TMP/bench.txt")" = 2 ] ||
    fail "bench --url over $protocol printed: $(cat "$TMP/bench.txt")"
done
KAPSL_API_KEY=wrong "$KAPSL" bench --url "$BASE" --model add -r 5 > "$TMP/bench.txt" 2>&1 &&
  fail "bench --url with a wrong key succeeded: $(cat "$TMP/bench.txt")"
grep -q "401" "$TMP/bench.txt" || fail "bench --url with a wrong key did not say why: $(cat "$TMP/bench.txt")"
echo "grpc e2e: ok"
