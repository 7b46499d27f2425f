package telemetry

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/emptypb"
)

// wireRequest is an OTLP export request as the receivers take it: its
// bytes. On a server built with ServerCodec they are set directly (one
// copy out of gRPC's buffers); with gRPC's own codec the request decodes
// as an Empty whose unknown fields hold them (a second copy).
type wireRequest struct {
	emptypb.Empty
	b []byte
}

// bytes returns the request's bytes, which the receiver may keep.
func (w *wireRequest) bytes() []byte {
	if w.b != nil {
		return w.b
	}
	return w.Empty.ProtoReflect().GetUnknown()
}

// ServerCodec is the codec for the gRPC server the hub's receivers are
// registered on (grpc.ForceServerCodecV2(telemetry.ServerCodec{})): gRPC's
// protobuf codec for every message, except that an export request reaches
// its receiver as bytes, copied once.
type ServerCodec struct{}

func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2("proto") }

func (ServerCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec().Marshal(v) }

func (ServerCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*wireRequest); ok {
		w.b = data.Materialize()
		return nil
	}
	return protoCodec().Unmarshal(data, v)
}

func (ServerCodec) Name() string { return "proto" }
