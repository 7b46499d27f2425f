// Package subset checks that an xDS resource uses only the fields weft's proxy
// implements. Envoy resources are large; silently ignoring a field that would
// change behaviour (a TLS transport socket, an unsupported filter) is worse
// than refusing the update, so every populated field is checked against a
// table of supported fields per message type, and the first field outside it
// is named in the error (and therefore in the NACK).
//
// The table is also the source of docs/xds-subset.md (see Markdown).
package subset

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// Field describes one supported field of a message.
type Field struct {
	Name string // proto field name, e.g. "filter_chains"
	Note string // what weft does with it; "accepted, no effect" for harmless ones
}

// Message lists the supported fields of one message type.
type Message struct {
	Type   protoreflect.FullName
	Fields []Field
	// Any means every field of this message (and below) is accepted as is.
	Any bool
}

// Table is a set of supported messages. It is immutable after construction
// and safe for concurrent use.
type Table struct {
	msgs  map[protoreflect.FullName]map[string]bool
	all   map[protoreflect.FullName]bool
	order []Message
}

// NewTable builds a table from message descriptions.
func NewTable(msgs ...Message) *Table {
	t := &Table{
		msgs: make(map[protoreflect.FullName]map[string]bool, len(msgs)),
		all:  make(map[protoreflect.FullName]bool),
	}
	for _, m := range msgs {
		if m.Any {
			t.all[m.Type] = true
		}
		fs := t.msgs[m.Type]
		if fs == nil {
			fs = make(map[string]bool, len(m.Fields))
			t.msgs[m.Type] = fs
		}
		for _, f := range m.Fields {
			fs[f.Name] = true
		}
		t.order = append(t.order, m)
	}
	return t
}

// Check walks every populated field of m (unpacking google.protobuf.Any values
// whose type is known to the global registry) and returns an error naming the
// path of the first field outside the table, e.g.
// `filter_chains[0].transport_socket: unsupported by weft`.
func (t *Table) Check(m proto.Message) error {
	return t.check(m.ProtoReflect(), "")
}

func (t *Table) check(m protoreflect.Message, path string) error {
	name := m.Descriptor().FullName()
	if t.all[name] {
		return nil
	}
	if name == "google.protobuf.Any" {
		return t.checkAny(m, path)
	}
	allowed, known := t.msgs[name]
	if !known {
		if isWellKnown(name) {
			return nil
		}
		return fmt.Errorf("%s: message %s unsupported by weft", orRoot(path), name)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		if !allowed[string(fd.Name())] {
			err = fmt.Errorf("%s: unsupported by weft", p)
			return false
		}
		err = t.checkValue(fd, v, p)
		return err == nil
	})
	return err
}

func (t *Table) checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, p string) error {
	switch {
	case fd.IsList():
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return nil
		}
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := t.check(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i)); err != nil {
				return err
			}
		}
	case fd.IsMap():
		if fd.MapValue().Kind() != protoreflect.MessageKind {
			return nil
		}
		var err error
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			err = t.check(mv.Message(), fmt.Sprintf("%s[%q]", p, k.String()))
			return err == nil
		})
		return err
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		return t.check(v.Message(), p)
	}
	return nil
}

func (t *Table) checkAny(m protoreflect.Message, path string) error {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return fmt.Errorf("%s: cannot read google.protobuf.Any", orRoot(path))
	}
	typeName := protoreflect.FullName(a.TypeUrl[strings.LastIndexByte(a.TypeUrl, '/')+1:])
	if _, known := t.msgs[typeName]; !known && !t.all[typeName] {
		return fmt.Errorf("%s: type %s unsupported by weft", orRoot(path), typeName)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(typeName)
	if err != nil {
		return fmt.Errorf("%s: type %s: %w", orRoot(path), typeName, err)
	}
	inner := mt.New().Interface()
	if err := proto.Unmarshal(a.Value, inner); err != nil {
		return fmt.Errorf("%s: decode %s: %w", orRoot(path), typeName, err)
	}
	return t.check(inner.ProtoReflect(), path)
}

// wellKnown message types are plain values (durations, wrappers, structs).
func isWellKnown(n protoreflect.FullName) bool {
	return strings.HasPrefix(string(n), "google.protobuf.")
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func orRoot(p string) string {
	if p == "" {
		return "(resource)"
	}
	return p
}

// Markdown renders the table as documentation: one section per message type
// with its supported fields and notes, in the order given to NewTable.
func (t *Table) Markdown() string {
	var b strings.Builder
	for _, m := range t.order {
		fmt.Fprintf(&b, "### `%s`\n\n", m.Type)
		if m.Any {
			b.WriteString("Every field is accepted.\n\n")
			continue
		}
		fs := append([]Field(nil), m.Fields...)
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
		b.WriteString("| field | weft |\n|---|---|\n")
		for _, f := range fs {
			note := f.Note
			if note == "" {
				note = "supported"
			}
			fmt.Fprintf(&b, "| `%s` | %s |\n", f.Name, note)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Fields refuses any populated field of m (one message, not its children)
// whose name is not in names: the error names the first such field under
// path, e.g. `abort.header_abort: unsupported by weft`. Decoders of single
// extension configs (fault, jwt, rbac) use it field by field as they
// descend; whole resources use a Table.
func Fields(m proto.Message, path string, names ...string) error {
	var err error
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		for _, n := range names {
			if string(fd.Name()) == n {
				return true
			}
		}
		err = fmt.Errorf("%s: unsupported by weft", join(path, string(fd.Name())))
		return false
	})
	return err
}
