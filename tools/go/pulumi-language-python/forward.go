package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

const service = "pulumirpc.LanguageRuntime"

// frame is one gRPC message, passed on as the bytes it arrived as.
type frame struct{ data []byte }

// rawCodec moves frames without decoding them; its name keeps the content type the peers expect.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("unexpected message type %T", v)
	}
	return f.data, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("unexpected message type %T", v)
	}
	f.data = bytes.Clone(data) // gRPC may reuse the buffer once this returns
	return nil
}

// forward serves one call from the CLI by making the same call to the right host. Every LanguageRuntime
// call sends exactly one request; replies are one message (unary) or a stream (RunPlugin,
// InstallDependencies, ...), passed back as they come, with the host's headers, trailers and status.
func (p *hostPool) forward(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	if !strings.HasPrefix(method, "/"+service+"/") {
		return status.Errorf(codes.Unimplemented, "%s: only %s is served here", method, service)
	}
	if method == "/"+service+"/Handshake" {
		// The old host has no Handshake either; answering here spares starting one just to hear it.
		return status.Error(codes.Unimplemented, "Handshake is not implemented by this language host")
	}
	request := &frame{}
	if err := stream.RecvMsg(request); err != nil {
		return err
	}
	adapted, err := adapt(method, request.data)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "%s: %v", method, err)
	}
	h, err := p.get(adapted.virtualenv, !adapted.hasInfo)
	if err != nil {
		return status.Errorf(codes.Unavailable, "%v", err)
	}

	ctx := stream.Context()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	upstream, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method,
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	if err := upstream.SendMsg(&frame{data: adapted.data}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := upstream.CloseSend(); err != nil {
		return err
	}
	header, err := upstream.Header()
	if err != nil {
		return err
	}
	if err := stream.SendHeader(header); err != nil {
		return err
	}
	for {
		reply := &frame{}
		err := upstream.RecvMsg(reply)
		if errors.Is(err, io.EOF) {
			stream.SetTrailer(upstream.Trailer())
			return nil
		}
		if err != nil {
			stream.SetTrailer(upstream.Trailer())
			return err // the host's status, passed on as it is
		}
		if err := stream.SendMsg(reply); err != nil {
			return err
		}
	}
}

// adaptedRequest is a request as the old host is to receive it, and which host it goes to.
type adaptedRequest struct {
	data       []byte
	virtualenv string // absolute, "" for none
	hasInfo    bool   // the request names a program (ProgramInfo)
}

// adapt decodes a request by its method's input type, finds its ProgramInfo, and fills the deprecated
// `program` field of Run and RunPlugin requests from it when the CLI left that field empty.
func adapt(method string, data []byte) (adaptedRequest, error) {
	unchanged := adaptedRequest{data: data}
	descriptor, err := protoregistry.GlobalFiles.FindDescriptorByName(service)
	if err != nil {
		return unchanged, err
	}
	serviceDescriptor, ok := descriptor.(protoreflect.ServiceDescriptor)
	if !ok {
		return unchanged, fmt.Errorf("%s is not a service", service)
	}
	methodDescriptor := serviceDescriptor.Methods().ByName(protoreflect.Name(method[strings.LastIndex(method, "/")+1:]))
	if methodDescriptor == nil {
		return unchanged, nil // a call this build does not know: passed on as it is
	}
	messageType, err := protoregistry.GlobalTypes.FindMessageByName(methodDescriptor.Input().FullName())
	if err != nil {
		return unchanged, err
	}
	message := messageType.New().Interface()
	if err := proto.Unmarshal(data, message); err != nil {
		return unchanged, err
	}
	withInfo, ok := message.(interface{ GetInfo() *pulumirpc.ProgramInfo })
	if !ok || withInfo.GetInfo() == nil {
		return unchanged, nil
	}
	info := withInfo.GetInfo()
	result := adaptedRequest{data: data, virtualenv: virtualenv(info), hasInfo: true}

	program := filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
	changed := false
	switch request := message.(type) {
	case *pulumirpc.RunPluginRequest:
		if request.GetProgram() == "" { //nolint:staticcheck // the field the old host reads
			request.Program = program //nolint:staticcheck
			changed = true
		}
	case *pulumirpc.RunRequest:
		if request.GetProgram() == "" { //nolint:staticcheck
			request.Program = program //nolint:staticcheck
			changed = true
		}
	}
	if changed {
		if result.data, err = proto.Marshal(message); err != nil {
			return unchanged, err
		}
	}
	return result, nil
}

// virtualenv is runtime.options.virtualenv of the program's Pulumi.yaml (or PulumiPolicy.yaml) as an
// absolute path, relative ones against the project's root folder; "" when none is set.
func virtualenv(info *pulumirpc.ProgramInfo) string {
	venv := info.GetOptions().GetFields()["virtualenv"].GetStringValue()
	if venv == "" || filepath.IsAbs(venv) {
		return venv
	}
	return filepath.Join(info.GetRootDirectory(), venv)
}
