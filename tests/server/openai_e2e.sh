#!/usr/bin/env bash
# End-to-end: the OpenAI-compatible API, driven by the official openai npm client
# (installed by the openai_npm CTest fixture into OPENAI_NODE_MODULES).
source "$(dirname "$0")/lib.sh"
: "${OPENAI_NODE_MODULES:?set OPENAI_NODE_MODULES to the node_modules holding openai}"
REPO=$TMP/repo
make_repo "$REPO"
start_server "$REPO" --max-concurrency 1 --max-queue 0 --ctx-size 4096
KAPSL_BASE=$BASE node "$(dirname "$0")/openai_client_test.mjs" || fail "openai client test"
http 200 GET /v2/health/live
