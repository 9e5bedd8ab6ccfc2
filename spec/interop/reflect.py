#!/usr/bin/python3
"""A gRPC client that knows no proto file of tc-sandbox: it learns
everything through server reflection, as grpcurl does.

    /usr/bin/python3 spec/interop/reflect.py --target HOST:PORT [--alpha] list
    /usr/bin/python3 spec/interop/reflect.py --target HOST:PORT [--alpha] \\
        call SERVICE/METHOD '{"json": "request"}' [--metadata KEY=VALUE]...
    /usr/bin/python3 spec/interop/reflect.py --target HOST:PORT [--alpha] \\
        raw '{"file_by_filename": "service.proto"}'

The only messages it is written against are those of the reflection
protocol itself (grpc.reflection.v1, or v1alpha with --alpha), built here
from a descriptor made in code. `list` prints the services, one a line.
`call` asks for the file that defines SERVICE, and the files it imports,
builds the message classes from those descriptors (descriptor_pool,
message_factory), calls METHOD with the JSON request and prints each
answer as one JSON line, then "status CODE details"; a server-streaming
method is read to its end, a unary one gives one line. --first N stops
after N answers (cancelling the call: "status CANCELLED by client"), for
a stream that does not end, such as the health service's Watch. `raw`
sends reflection requests (proto3 JSON, one argument each) on one stream
and prints each answer's JSON, with the names of the files it carries
instead of their bytes.
"""

import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def reflection_classes(package):
    """ServerReflectionRequest and ServerReflectionResponse of package."""
    f = descriptor_pb2.FileDescriptorProto(name="reflection-client.proto", package=package,
                                           syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def message(name, fields, oneof=None):
        m = f.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for number, fname, ftype, extra in fields:
            field = m.field.add(name=fname, number=number, type=ftype,
                                label=extra.get("label", T.LABEL_OPTIONAL))
            if "type_name" in extra:
                field.type_name = "." + package + "." + extra["type_name"]
            if extra.get("oneof"):
                field.oneof_index = 0

    message("ServerReflectionRequest", [
        (1, "host", T.TYPE_STRING, {}),
        (3, "file_by_filename", T.TYPE_STRING, {"oneof": True}),
        (4, "file_containing_symbol", T.TYPE_STRING, {"oneof": True}),
        (5, "file_containing_extension", T.TYPE_MESSAGE,
         {"oneof": True, "type_name": "ExtensionRequest"}),
        (6, "all_extension_numbers_of_type", T.TYPE_STRING, {"oneof": True}),
        (7, "list_services", T.TYPE_STRING, {"oneof": True}),
    ], oneof="message_request")
    message("ExtensionRequest", [
        (1, "containing_type", T.TYPE_STRING, {}),
        (2, "extension_number", T.TYPE_INT32, {}),
    ])
    message("ServerReflectionResponse", [
        (1, "valid_host", T.TYPE_STRING, {}),
        (2, "original_request", T.TYPE_MESSAGE, {"type_name": "ServerReflectionRequest"}),
        (4, "file_descriptor_response", T.TYPE_MESSAGE,
         {"oneof": True, "type_name": "FileDescriptorResponse"}),
        (5, "all_extension_numbers_response", T.TYPE_MESSAGE,
         {"oneof": True, "type_name": "ExtensionNumberResponse"}),
        (6, "list_services_response", T.TYPE_MESSAGE,
         {"oneof": True, "type_name": "ListServiceResponse"}),
        (7, "error_response", T.TYPE_MESSAGE, {"oneof": True, "type_name": "ErrorResponse"}),
    ], oneof="message_response")
    message("FileDescriptorResponse", [
        (1, "file_descriptor_proto", T.TYPE_BYTES, {"label": T.LABEL_REPEATED}),
    ])
    message("ExtensionNumberResponse", [
        (1, "base_type_name", T.TYPE_STRING, {}),
        (2, "extension_number", T.TYPE_INT32, {"label": T.LABEL_REPEATED}),
    ])
    message("ListServiceResponse", [
        (1, "service", T.TYPE_MESSAGE, {"label": T.LABEL_REPEATED,
                                         "type_name": "ServiceResponse"}),
    ])
    message("ServiceResponse", [(1, "name", T.TYPE_STRING, {})])
    message("ErrorResponse", [
        (1, "error_code", T.TYPE_INT32, {}),
        (2, "error_message", T.TYPE_STRING, {}),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    get = lambda name: factory.GetPrototype(pool.FindMessageTypeByName(package + "." + name))
    return get("ServerReflectionRequest"), get("ServerReflectionResponse")


class Reflection:
    def __init__(self, channel, alpha):
        package = "grpc.reflection.v1alpha" if alpha else "grpc.reflection.v1"
        self.Request, self.Response = reflection_classes(package)
        self.call = channel.stream_stream(
            "/%s.ServerReflection/ServerReflectionInfo" % package,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.Response.FromString)

    def ask(self, **request):
        """One request on a stream of its own; its one response."""
        answers = list(self.call(iter([self.Request(**request)]), timeout=30))
        assert len(answers) == 1, "one request, %d answers" % len(answers)
        return answers[0]

    def services(self):
        answer = self.ask(list_services="")
        return [s.name for s in answer.list_services_response.service]

    def pool_for(self, symbol):
        """A descriptor pool holding the file that defines symbol, and its imports."""
        answer = self.ask(file_containing_symbol=symbol)
        if answer.WhichOneof("message_response") == "error_response":
            raise SystemExit("reflection: %s: %s" % (symbol, answer.error_response.error_message))
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in answer.file_descriptor_response.file_descriptor_proto]
        pool = descriptor_pool.DescriptorPool()
        added = set()
        while len(added) < len(files):  # each file after the files it imports
            progress = False
            for fd in files:
                if fd.name not in added and all(d in added for d in fd.dependency):
                    pool.Add(fd)
                    added.add(fd.name)
                    progress = True
            if not progress:
                raise SystemExit("reflection: imports missing for " + symbol)
        return pool


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True)
    p.add_argument("--alpha", action="store_true", help="use grpc.reflection.v1alpha")
    p.add_argument("--metadata", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument("--first", type=int, default=0, help="stop after N answers")
    p.add_argument("what", choices=["list", "call", "raw"])
    p.add_argument("args", nargs="*")
    args = p.parse_args()
    channel = grpc.insecure_channel(args.target)
    reflection = Reflection(channel, args.alpha)

    if args.what == "list":
        for name in reflection.services():
            print(name)
        return 0

    if args.what == "raw":
        requests = [reflection.Request(**json.loads(a)) for a in args.args]
        for answer in reflection.call(iter(requests), timeout=30):
            out = json_format.MessageToDict(answer, preserving_proto_field_name=True)
            fdr = out.get("file_descriptor_response")
            if fdr:
                fdr["file_descriptor_proto"] = [
                    descriptor_pb2.FileDescriptorProto.FromString(b).name
                    for b in answer.file_descriptor_response.file_descriptor_proto]
            print(json.dumps(out, sort_keys=True))
        return 0

    service_name, method_name = args.args[0].rsplit("/", 1)
    pool = reflection.pool_for(service_name)
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    factory = message_factory.MessageFactory(pool)
    Request = factory.GetPrototype(method.input_type)
    Reply = factory.GetPrototype(method.output_type)
    request = json_format.Parse(args.args[1] if len(args.args) > 1 else "{}", Request())
    path = "/%s/%s" % (service_name, method_name)
    metadata = [tuple(m.split("=", 1)) for m in args.metadata]
    kind = channel.unary_stream if method.server_streaming else channel.unary_unary
    call = kind(path, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=Reply.FromString)
    code, details = "OK", ""
    try:
        answers = call(request, metadata=metadata, timeout=30)
        n = 0
        for answer in (answers if method.server_streaming else [answers]):
            print(json.dumps(json_format.MessageToDict(answer, preserving_proto_field_name=True),
                             ensure_ascii=False, sort_keys=True))
            n += 1
            if n == args.first:
                answers.cancel()
                code, details = "CANCELLED", "by client"
                break
    except grpc.RpcError as e:
        code, details = e.code().name, e.details() or ""
    print("status %s %s" % (code, details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
