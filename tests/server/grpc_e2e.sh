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
echo "grpc e2e: ok"
