#!/usr/bin/env python3
"""Makes ggml's RPC client survive a lost worker (llama.cpp v0.5.0, ggml-rpc protocol 7).

Stock ggml-rpc ends the process (GGML_ABORT) when a send or receive to a worker fails on its
dispatcher thread, so one worker that goes away takes every model of the serving process
with it. This edit, applied to the source by scripts/bootstrap-deps before it builds:

  - marks the dispatcher of that worker lost instead, logs it once, and completes that
    message and every later one without sending it (outputs are left as they were), so the
    threads waiting on them go on and a model using the worker can be freed;
  - adds ggml_backend_rpc_lost(endpoint) to ggml-rpc.h: whether the live connection to that
    endpoint has been lost. A client that sees true must treat the results computed since as
    garbage, and free what uses the endpoint; the next use of the endpoint connects afresh.

Connection failures at connect time still abort, as before: kapsl checks each worker with
its own handshake first. Usage: ggml_rpc_lost_worker.py LLAMA_SOURCE_DIR. Fails, changing
nothing, if the source is not the one this edit was written for.
"""
import pathlib
import sys

SOURCE = "ggml/src/ggml-rpc/ggml-rpc.cpp"
HEADER = "ggml/include/ggml-rpc.h"

EDITS = {
    SOURCE: [
        # the dispatcher's state
        ("""    socket_ptr       sock;
    std::atomic_bool running;
    std::thread      thread;
};
""", """    socket_ptr       sock;
    std::atomic_bool running;
    std::thread      thread;
    std::string      endpoint;
public:
    std::atomic_bool lost{false};
};
"""),
        ("""    sock = socket_t::connect(host.c_str(), port);
    if (sock == nullptr) {""", """    this->endpoint = endpoint;
    sock = socket_t::connect(host.c_str(), port);
    if (sock == nullptr) {"""),
        # a failed exchange marks the worker lost instead of aborting
        ("""            if (msg_ptr->output) {
                bool status = send_rpc_cmd(sock, msg_ptr->cmd, msg_ptr->input.get(), msg_ptr->input_size, msg_ptr->output, msg_ptr->output_size);
                RPC_STATUS_ASSERT(status);
            } else {
                bool status = send_rpc_cmd(sock, msg_ptr->cmd, msg_ptr->input.get(), msg_ptr->input_size);
                RPC_STATUS_ASSERT(status);
            }""", """            bool failed = lost;
            if (!failed && msg_ptr->output) {
                failed = !send_rpc_cmd(sock, msg_ptr->cmd, msg_ptr->input.get(), msg_ptr->input_size, msg_ptr->output, msg_ptr->output_size);
            } else if (!failed) {
                failed = !send_rpc_cmd(sock, msg_ptr->cmd, msg_ptr->input.get(), msg_ptr->input_size);
            }
            if (failed && !lost.exchange(true)) {
                GGML_LOG_ERROR("RPC worker %s stopped answering: its results are lost from here on\\n", endpoint.c_str());
            }"""),
        # the dispatchers by endpoint, where ggml_backend_rpc_lost can see them
        ("""static std::shared_ptr<rpc_dispatcher> get_dispatcher(const std::string & endpoint) {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    static std::unordered_map<std::string, std::weak_ptr<rpc_dispatcher>> dispatchers;
""", """static std::mutex g_dispatchers_mutex;
static std::unordered_map<std::string, std::weak_ptr<rpc_dispatcher>> g_dispatchers;

bool ggml_backend_rpc_lost(const char * endpoint) {
    std::lock_guard<std::mutex> lock(g_dispatchers_mutex);
    auto it = g_dispatchers.find(endpoint);
    if (it == g_dispatchers.end()) {
        return false;
    }
    auto dispatcher = it->second.lock();
    return dispatcher && dispatcher->lost;
}

static std::shared_ptr<rpc_dispatcher> get_dispatcher(const std::string & endpoint) {
    std::lock_guard<std::mutex> lock(g_dispatchers_mutex);
    auto & dispatchers = g_dispatchers;
"""),
    ],
    HEADER: [
        ("""GGML_BACKEND_API ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint);
""", """GGML_BACKEND_API ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint);

// Whether the live connection to `endpoint` failed (the worker stopped answering). Results
// computed through it since are garbage; free what uses it, and the next use reconnects.
// Added by kapsl's scripts/patches/ggml_rpc_lost_worker.py.
GGML_BACKEND_API bool ggml_backend_rpc_lost(const char * endpoint);
"""),
    ],
}


def main():
    root = pathlib.Path(sys.argv[1])
    texts = {name: (root / name).read_text() for name in EDITS}
    for name, edits in EDITS.items():
        for old, new in edits:
            if texts[name].count(old) != 1:
                sys.exit("ggml_rpc_lost_worker.py: %s is not the source this edit was written for: %r" % (name, old[:60]))
            texts[name] = texts[name].replace(old, new)
    for name, text in texts.items():
        (root / name).write_text(text)


if __name__ == "__main__":
    main()
