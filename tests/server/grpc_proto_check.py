#!/usr/bin/env python3
"""The project's proto/grpc_predict_v2.proto against KServe's published definition.

Both files are compiled by protoc into descriptor sets; every service method and every
message of the reference (nested ones too) must exist in ours with the same fields: name,
number, type, label, type name and oneof. Ours may add (the repository extension), never
change. Usage: grpc_proto_check.py OURS.proto REFERENCE.proto
"""
import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2


def load(path):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.run(["protoc", "-I", os.path.dirname(os.path.abspath(path)), "--descriptor_set_out=" + out,
                        os.path.abspath(path)], check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    return fds.file[0]


def messages(file):
    found = {}

    def walk(prefix, msgs):
        for m in msgs:
            name = prefix + m.name
            found[name] = m
            walk(name + ".", m.nested_type)

    walk("", file.message_type)
    return found


def field_key(f, msg):
    oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else ""
    return (f.name, f.number, f.type, f.label, f.type_name, oneof)


def main():
    ours, ref = load(sys.argv[1]), load(sys.argv[2])
    problems = []
    if ours.package != ref.package:
        problems.append(f"package {ours.package!r} != {ref.package!r}")
    our_msgs, ref_msgs = messages(ours), messages(ref)
    for name, m in ref_msgs.items():
        if name not in our_msgs:
            problems.append(f"message {name} missing")
            continue
        got = {f.number: field_key(f, our_msgs[name]) for f in our_msgs[name].field}
        for f in m.field:
            want = field_key(f, m)
            if got.get(f.number) != want:
                problems.append(f"{name} field {f.number}: ours {got.get(f.number)} != reference {want}")
        if len(our_msgs[name].field) != len(m.field):
            problems.append(f"{name}: {len(our_msgs[name].field)} fields, reference has {len(m.field)}")
    our_services = {s.name: s for s in ours.service}
    for s in ref.service:
        if s.name not in our_services:
            problems.append(f"service {s.name} missing")
            continue
        methods = {(m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                   for m in our_services[s.name].method}
        for m in s.method:
            if (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming) not in methods:
                problems.append(f"{s.name}.{m.name} differs or is missing")
    checked = sum(len(m.field) for m in ref_msgs.values())
    if problems:
        print("proto mismatch:\n  " + "\n  ".join(problems))
        return 1
    print(f"proto check: {len(ref_msgs)} messages, {checked} fields and "
          f"{sum(len(s.method) for s in ref.service)} methods match the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
