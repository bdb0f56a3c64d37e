package runwarm

import (
	"errors"
	"fmt"
	"reflect"
)

// The error kinds all shims share (PROTOCOL.md §3.2), plus the one Go adds for panics.
const (
	kindEntryNotFound       = "EntryNotFound"
	kindHandlerNotFound     = "HandlerNotFound"
	kindHandlerNotCallable  = "HandlerNotCallable"
	kindUnsupportedMode     = "UnsupportedMode"
	kindUnsupportedProtocol = "UnsupportedProtocol"
	kindSerializationError  = "SerializationError"
	kindPanic               = "panic"
)

type errorBody struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Trace   string `json:"trace,omitempty"`
}

// ErrorKinder lets an error choose the kind reported to the supervisor, instead of its type
// name. The first error in the Unwrap chain that implements it and returns a non-empty string
// wins.
type ErrorKinder interface {
	ErrorKind() string
}

// errorKind names an error for error.kind, Go's counterpart of an exception class: the
// ErrorKind() of the first error in the chain that has one, else the name of the error's
// dynamic type without package path or pointer stars (*errors.errorString → errorString,
// *fs.PathError → PathError, *main.NotFound → NotFound). Wrappers are not looked through, so
// that the kind always names the value the handler returned.
func errorKind(err error) string {
	var k ErrorKinder
	if errors.As(err, &k) {
		if kind := k.ErrorKind(); kind != "" {
			return kind
		}
	}
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String() // an unnamed type, e.g. a struct literal type
}

// errorBodyOf describes an error a handler returned. Go errors carry no stack; an error that
// formats itself differently with %+v (pkg/errors and its successors print their recorded stack
// that way) gets that text as the trace.
func errorBodyOf(err error) *errorBody {
	body := &errorBody{Kind: errorKind(err), Message: err.Error()}
	if body.Message == "" {
		body.Message = body.Kind
	}
	if _, ok := err.(fmt.Formatter); ok {
		if detailed := fmt.Sprintf("%+v", err); detailed != body.Message {
			body.Trace = detailed
		}
	}
	return body
}
