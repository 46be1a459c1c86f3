#!/usr/bin/env python3
"""Chat-template rendering checked against llama.cpp's own server.

For every template in llama.cpp's models/templates/, the same three conversations (plain
turns; the same with tools offered; a tool call and its result) are rendered by
`kapsl serve`'s /apply-template (the request's chat_template) and by llama-server's
/apply-template (started with --jinja --chat-template-file), on the same model. The
prompts must be equal byte for byte, or both servers must refuse. Both render through
llama.cpp's `common`; what this checks is everything around it in kapsl: how OpenAI
messages and tools become its inputs, which template is picked, the options passed.

Environment: KAPSL, KAPSL_TEST_DATA, LLAMA_SERVER (skipped, exit 77, when it is not
built: scripts/bootstrap-deps --with-tools), LLAMA_TEMPLATES (the templates folder).
"""
import json
import os
import sys
import tempfile

import server_procs
from server_procs import post

KAPSL = os.environ["KAPSL"]
MODEL = os.path.join(os.environ["KAPSL_TEST_DATA"], "tiny-spm.gguf")
LLAMA_SERVER = os.environ.get("LLAMA_SERVER", "")
TEMPLATES = os.environ["LLAMA_TEMPLATES"]

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
TURNS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"},
         {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Weather in Paris?"}]
CALL = [{"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C, sunny"}]
CASES = {"turns": {"messages": TURNS}, "turns+tools": {"messages": TURNS, "tools": TOOLS},
         "tool call": {"messages": CALL, "tools": TOOLS}}


def start_kapsl(log):
    return server_procs.start_kapsl(KAPSL, ["--model", MODEL, "--model-name", "tiny", "--ctx-size", "4096"], log)


def llama_prompts(template_path, log):
    """{case: prompt or None (refused)} from llama-server, or None if it did not start."""
    args = ["--jinja", "--chat-template-file", template_path, "-c", "512", "-np", "1", "-t", "1"]
    with server_procs.llama_server(LLAMA_SERVER, MODEL, args, log) as port:
        if port is None:
            return None
        out = {}
        for name, body in CASES.items():
            status, answer = post(port, "/apply-template", body)
            out[name] = answer["prompt"] if status == 200 else None
        return out


def main():
    if not server_procs.llama_server_built(LLAMA_SERVER):
        return 77
    templates = sorted(f for f in os.listdir(TEMPLATES) if f.endswith(".jinja"))
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as klog, \
         tempfile.NamedTemporaryFile("w+", suffix=".log") as llog:
        kapsl, kport = start_kapsl(klog)
        same = refused = 0
        diffs = []
        try:
            for t in templates:
                path = os.path.join(TEMPLATES, t)
                theirs = llama_prompts(path, llog)
                with open(path) as f:
                    source = f.read()
                for name, body in CASES.items():
                    status, answer = post(kport, "/apply-template", dict(body, model="tiny", chat_template=source))
                    ours = answer["prompt"] if status == 200 else None
                    expected = theirs[name] if theirs is not None else None
                    if ours == expected:
                        same += ours is not None
                        refused += ours is None
                    else:
                        diffs.append((t, name, ours, expected))
        finally:
            kapsl.terminate()
            kapsl.wait(timeout=10)
    print(f"templates: {len(templates)}; renderings equal to llama-server's: {same}; refused by both: {refused}; "
          f"different: {len(diffs)}")
    for t, name, ours, theirs in diffs[:40]:
        if ours is None or theirs is None:
            print(f"DIFF {t} [{name}]: kapsl {'refused' if ours is None else 'rendered'}, "
                  f"llama-server {'refused' if theirs is None else 'rendered'}")
            continue
        at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        print(f"DIFF {t} [{name}] from byte {at}:\n  kapsl:        {json.dumps(ours[max(0, at - 40):at + 80])}\n"
              f"  llama-server: {json.dumps(theirs[max(0, at - 40):at + 80])}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
