package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// echoStreamDesc is a bidirectional streaming method without generated
// code: every message received is sent back with "echo: " prepended.
var echoStreamDesc = grpc.StreamDesc{StreamName: "Chat", ServerStreams: true, ClientStreams: true}

var echoService = grpc.ServiceDesc{
	ServiceName: "weft.test.Echo",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Chat", ServerStreams: true, ClientStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			for {
				var m structpb.Value
				if err := stream.RecvMsg(&m); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := stream.SendMsg(structpb.NewStringValue("echo: " + m.GetStringValue())); err != nil {
					return err
				}
			}
		},
	}},
}

// TestProxyGRPCBidi runs a bidirectional gRPC stream through two weft
// proxy processes (the mesh path), interleaving sends and receives so that
// each message must cross both hops before the next is sent.
func TestProxyGRPCBidi(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&echoService, nil)
	go srv.Serve(lis)
	defer srv.Stop()

	adminA, adminB, portA, portB := freePort(t), freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	docB := bootstrapDoc(adminB, httpListenerDoc("b", portB, "echo"), clusterDoc("echo", true, lis.Addr().String()))
	docA := bootstrapDoc(adminA, httpListenerDoc("a", portA, "hop"), clusterDoc("hop", true, fmt.Sprintf("127.0.0.1:%d", portB)))
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(docA), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(docB), 0o644)
	pb := start(t, "proxy", "--config", filepath.Join(dir, "b.yaml"))
	pa := start(t, "proxy", "--config", filepath.Join(dir, "a.yaml"))
	waitReady(t, pb, adminB)
	waitReady(t, pa, adminA)

	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", portA), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := cc.NewStream(ctx, &echoStreamDesc, "/weft.test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		msg := fmt.Sprintf("message %d", i)
		if err := st.SendMsg(structpb.NewStringValue(msg)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		var got structpb.Value
		if err := st.RecvMsg(&got); err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if got.GetStringValue() != "echo: "+msg {
			t.Fatalf("recv %d: %q", i, got.GetStringValue())
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var end structpb.Value
	if err := st.RecvMsg(&end); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want io.EOF (status OK in trailers)", err)
	}
}
