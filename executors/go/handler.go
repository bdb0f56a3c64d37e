package runwarm

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
)

var (
	contextType         = reflect.TypeOf((*context.Context)(nil)).Elem()
	errorType           = reflect.TypeOf((*error)(nil)).Elem()
	jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

const wantSignature = "want func([context.Context,] [E]) with results (), (R), (error) or (R, error)"

// handlerFunc is a handler whose signature has been checked, so that a request can only fail
// because of what the handler does, never because of how it is called.
type handlerFunc struct {
	fn        reflect.Value
	takesCtx  bool
	event     reflect.Type // nil when the handler takes no payload
	hasResult bool
	hasError  bool
}

func newHandler(h any) (*handlerFunc, error) {
	if h == nil {
		return nil, errors.New("handler is nil")
	}
	v := reflect.ValueOf(h)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, fmt.Errorf("handler is a %s, not a function", t)
	}
	if v.IsNil() {
		return nil, fmt.Errorf("handler is a nil %s", t)
	}
	if t.IsVariadic() {
		return nil, fmt.Errorf("handler %s is variadic; %s", t, wantSignature)
	}
	hf := &handlerFunc{fn: v}
	// context.Context is matched by identity: a payload type that happens to have the same
	// methods is still a payload.
	switch n := t.NumIn(); {
	case n == 0:
	case n == 1 && t.In(0) == contextType:
		hf.takesCtx = true
	case n == 1:
		hf.event = t.In(0)
	case n == 2 && t.In(0) == contextType:
		hf.takesCtx = true
		hf.event = t.In(1)
	case n == 2:
		return nil, fmt.Errorf("handler %s takes two arguments but the first is %s, not context.Context; %s",
			t, t.In(0), wantSignature)
	default:
		return nil, fmt.Errorf("handler %s takes %d arguments; %s", t, n, wantSignature)
	}
	if hf.event != nil {
		if err := checkDecodable(hf.event); err != nil {
			return nil, fmt.Errorf("handler %s: %v", t, err)
		}
	}
	switch n := t.NumOut(); {
	case n == 0:
	case n == 1 && t.Out(0).Implements(errorType):
		hf.hasError = true
	case n == 1:
		hf.hasResult = true
	case n == 2 && t.Out(1).Implements(errorType):
		hf.hasResult = true
		hf.hasError = true
	case n == 2:
		return nil, fmt.Errorf("handler %s returns two values but the second is %s, not an error; %s",
			t, t.Out(1), wantSignature)
	default:
		return nil, fmt.Errorf("handler %s returns %d values; %s", t, n, wantSignature)
	}
	return hf, nil
}

// checkDecodable rejects payload types that json.Unmarshal can never fill, so that the mistake
// shows at start-up rather than on the first request.
func checkDecodable(t reflect.Type) error {
	ptr := reflect.PointerTo(t)
	if ptr.Implements(jsonUnmarshalerType) || ptr.Implements(textUnmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("the payload type %s cannot be decoded from JSON", t)
	case reflect.Interface:
		if t.NumMethod() > 0 {
			return fmt.Errorf("the payload type %s is an interface with methods, which JSON cannot "+
				"be decoded into; use a concrete type, any or json.RawMessage", t)
		}
	}
	return nil
}

// stage says how far a call got, so a panic is reported as the handler's or as the shim's
// decoding or encoding of user types.
type stage int

const (
	stageDecode stage = iota
	stageHandler
	stageError
	stageResult
	stageDone
)

// invoke decodes payload, calls the handler and encodes its result, on the calling goroutine:
// handing each call to a fresh goroutine costs a cross-thread wake-up that triples a warm round
// trip. A panic becomes a failure here. runtime.Goexit cannot be stopped: invoke calls onGoexit
// with the failure while the goroutine unwinds, and onGoexit must carry on serving elsewhere.
func (h *handlerFunc) invoke(ctx context.Context, payload json.RawMessage, onGoexit func(*errorBody)) (result []byte, fail *errorBody) {
	at := stageDecode
	defer func() {
		if at == stageDone {
			return
		}
		r := recover()
		if r == nil {
			// recover() is nil in a deferred call before the function finished only when the
			// goroutine is unwinding for runtime.Goexit (or panic(nil) in a module older than
			// go 1.21).
			onGoexit(&errorBody{
				Kind:    "Goexit",
				Message: "the handler called runtime.Goexit; a warm executor keeps serving",
				Trace:   string(debug.Stack()),
			})
			return
		}
		fail = recovered(at, r)
	}()
	args := make([]reflect.Value, 0, 2)
	if h.takesCtx {
		args = append(args, reflect.ValueOf(&ctx).Elem())
	}
	if h.event != nil {
		if len(payload) == 0 {
			payload = json.RawMessage("null")
		}
		p := reflect.New(h.event)
		if err := json.Unmarshal(payload, p.Interface()); err != nil {
			at = stageDone
			return nil, &errorBody{
				Kind:    errorKind(err),
				Message: fmt.Sprintf("the payload does not decode into %s: %v", h.event, err),
			}
		}
		args = append(args, p.Elem())
	}
	at = stageHandler
	out := h.fn.Call(args)
	at = stageError
	if h.hasError {
		if e := out[len(out)-1]; !isNil(e) {
			fail = errorBodyOf(e.Interface().(error))
			at = stageDone
			return nil, fail
		}
	}
	at = stageResult
	var v any
	if h.hasResult {
		v = out[0].Interface()
	}
	b, err := encodeJSON(v)
	at = stageDone
	if err != nil {
		return nil, &errorBody{Kind: kindSerializationError, Message: "the result is not JSON: " + err.Error()}
	}
	return b, nil
}

// isNil is true for a nil error result. A nil *MyError returned as *MyError counts as no error;
// returned through the error interface it is a non-nil error, as everywhere in Go.
func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return v.IsNil()
	}
	return false
}

func recovered(at stage, r any) *errorBody {
	trace := panicTrace(debug.Stack())
	switch at {
	case stageDecode:
		return &errorBody{Kind: kindPanic, Message: fmt.Sprintf("decoding the payload panicked: %v", r), Trace: trace}
	case stageError:
		return &errorBody{Kind: kindPanic, Message: fmt.Sprintf("the returned error's Error method panicked: %v", r),
			Trace: trace}
	case stageResult:
		return &errorBody{Kind: kindSerializationError, Message: fmt.Sprintf("encoding the result panicked: %v", r),
			Trace: trace}
	}
	return &errorBody{Kind: kindPanic, Message: fmt.Sprint(r), Trace: trace}
}

// panicTrace cuts a stack taken during recovery down to the script's frames, the way Go's own
// crash report starts at the panicking function: the frames above the runtime's panic are the
// recovery's, and those from the shim's reflect call down are the serve loop's. A stack of an
// unexpected shape is returned whole.
func panicTrace(stack []byte) string {
	s := string(stack)
	header, frames, ok := strings.Cut(s, "\n")
	if !ok {
		return s
	}
	if i := strings.Index(frames, "\npanic("); i >= 0 {
		// The panic frame is two lines: the call, then the tab-indented file and line.
		rest := frames[i+1:]
		for n := 0; n < 2 && rest != ""; n++ {
			_, rest, _ = strings.Cut(rest, "\n")
		}
		frames = rest
	}
	if i := strings.LastIndex(frames, "\nreflect.Value.call("); i >= 0 &&
		strings.Contains(frames[i:], "runwarm.dev/runwarm.(*handlerFunc).invoke(") {
		frames = frames[:i+1]
	}
	return header + "\n" + frames
}
