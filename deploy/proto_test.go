package deploy

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
)

// validator is what protoc-gen-validate generates for Envoy's messages.
type validator interface{ ValidateAll() error }

// checkMessage applies a message's validation rules, then walks every field that is set:
// a deprecated field is an error (Envoy warns, then refuses them in later releases), and
// each typed config (Any) is unpacked, validated and walked in turn, which the generated
// rules alone do not do.
func checkMessage(m protoreflect.Message, path string) error {
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: typed config %s: %w", path, a.GetTypeUrl(), err)
		}
		return checkMessage(inner.ProtoReflect(), path+"("+string(inner.ProtoReflect().Descriptor().FullName())+")")
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		at := path + "." + string(fd.Name())
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
			err = fmt.Errorf("%s: the field is deprecated in Envoy's API; use its replacement", at)
			return false
		}
		if fd.Kind() == protoreflect.EnumKind {
			if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
				if opts, ok := ev.Options().(*descriptorpb.EnumValueOptions); ok && opts.GetDeprecated() {
					err = fmt.Errorf("%s: the value %s is deprecated in Envoy's API", at, ev.Name())
					return false
				}
			}
		}
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = checkMessage(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", at, i))
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = checkMessage(mv.Message(), fmt.Sprintf("%s[%v]", at, k.Interface()))
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
			err = checkMessage(v.Message(), at)
		}
		return err == nil
	})
	return err
}
