#!/usr/bin/env bash
# End-to-end: /metrics after real traffic passes Prometheus's own linter
# (`promtool check metrics`) and carries the per-model and pool series.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus)"
REPO=$TMP/repo
make_repo "$REPO"
start_server "$REPO" --max-models 1
xs=$(seq 0 59 | paste -sd, -)
REQ='{"inputs":[{"name":"x","shape":[3,4,5],"datatype":"FP32","data":['$xs']},{"name":"y","shape":[3,4,5],"datatype":"FP32","data":['$xs']}]}'
http 200 POST /v2/models/add/infer -d "$REQ"
http 400 POST /v2/models/add/infer -d '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'
http 200 POST /v1/completions -d '{"model":"tiny","prompt":"Hello","max_tokens":4,"temperature":0}'
# --max-models 1: loading tiny evicted add; loading add again evicts tiny.
http 200 POST /v2/models/add/infer -d "$REQ"
http 200 GET /metrics
printf '%s\n' "$BODY" > "$TMP/metrics.txt"
promtool check metrics < "$TMP/metrics.txt" || fail "promtool check metrics: $(promtool check metrics < "$TMP/metrics.txt" 2>&1)"
value() { awk -v k="$1" '$1 == k {print $2}' "$TMP/metrics.txt"; }
[ "$(value 'kapsl_inference_requests_total{model="add",outcome="success"}')" = 2 ] || fail "add successes"
[ "$(value 'kapsl_inference_requests_total{model="add",outcome="client_error"}')" = 1 ] || fail "add client errors"
[ "$(value 'kapsl_inference_request_duration_seconds_count{model="add"}')" = 3 ] || fail "add latency count"
[ "$(value 'kapsl_inference_generated_tokens_total{model="tiny"}')" -ge 1 ] || fail "tiny generated tokens"
[ "$(value 'kapsl_inference_time_to_first_token_seconds_count{model="tiny"}')" = 1 ] || fail "tiny ttft"
[ "$(value 'kapsl_pool_loads_total')" = 3 ] || fail "pool loads"
[ "$(value 'kapsl_pool_evictions_total{reason="capacity"}')" = 2 ] || fail "capacity evictions"
[ "$(value 'kapsl_inference_in_flight_requests{model="add"}')" = 0 ] || fail "in flight"
[ "$(value 'process_resident_memory_bytes' | cut -d. -f1 | tr -d e+)" != 0 ] || fail "process memory"
grep -q '^kapsl_inference_queue_duration_seconds_bucket{model="add",le="+Inf"} 3' "$TMP/metrics.txt" || fail "queue histogram"
grep -q '^kapsl_pool_load_duration_seconds_count 3' "$TMP/metrics.txt" || fail "load histogram"
# The engine's own split of compute, and executions apart from requests (3 rows each).
[ "$(value 'kapsl_inference_compute_infer_duration_seconds_count{model="add"}')" = 2 ] || fail "add infer histogram"
[ "$(value 'kapsl_inference_executions_total{model="add"}')" = 2 ] || fail "add executions"
[ "$(value 'kapsl_inference_batch_size_sum{model="add"}')" = 6 ] || fail "add batch rows"
echo "metrics e2e: ok"
