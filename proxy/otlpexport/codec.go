package otlpexport

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// rawMessage is a request already encoded as protobuf.
type rawMessage []byte

// rawCodec sends a rawMessage as it is and decodes responses as protobuf.
// It is named "proto", so the call's content type is the usual
// application/grpc+proto and the collector decodes the bytes with its
// generated types. Safe for concurrent use.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(rawMessage)
	if !ok {
		return nil, fmt.Errorf("otlpexport: raw codec cannot marshal %T", v)
	}
	// A SliceBuffer is never returned to a pool: the exporter decides
	// when the bytes may be reused (see Exporter.send).
	return mem.BufferSlice{mem.SliceBuffer(m)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("otlpexport: raw codec cannot unmarshal into %T", v)
	}
	return encoding.GetCodecV2("proto").Unmarshal(data, m)
}

func (rawCodec) Name() string { return "proto" }
