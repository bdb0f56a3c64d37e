package runwarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

type event struct {
	Name string `json:"name"`
}

type stringer interface{ String() string }

type notFound struct{ what string }

func (e *notFound) Error() string { return e.what + " not found" }

type kinded struct{}

func (kinded) Error() string     { return "kinded" }
func (kinded) ErrorKind() string { return "Custom" }

func TestAcceptedSignatures(t *testing.T) {
	for name, h := range map[string]any{
		"nothing":         func() {},
		"event":           func(event) {},
		"context":         func(context.Context) {},
		"context, event":  func(context.Context, map[string]any) {},
		"raw payload":     func(json.RawMessage) {},
		"any payload":     func(any) {},
		"pointer payload": func(*event) {},
		"result":          func() string { return "" },
		"error":           func(event) error { return nil },
		"typed error":     func() *notFound { return nil },
		"result, error":   func(context.Context, event) (map[string]any, error) { return nil, nil },
	} {
		if _, err := newHandler(h); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRejectedSignatures(t *testing.T) {
	for _, c := range []struct {
		handler any
		want    string
	}{
		{nil, "handler is nil"},
		{42, "is a int, not a function"},
		{(func())(nil), "nil func()"},
		{func(...string) {}, "variadic"},
		{func(event, context.Context) {}, "the first is runwarm.event, not context.Context"},
		{func(context.Context, event, int) {}, "takes 3 arguments"},
		{func() (int, string) { return 0, "" }, "the second is string, not an error"},
		{func() (int, int, error) { return 0, 0, nil }, "returns 3 values"},
		{func(chan int) {}, "chan int cannot be decoded"},
		{func(context.Context, func()) {}, "func() cannot be decoded"},
		{func(stringer) {}, "interface with methods"},
	} {
		_, err := newHandler(c.handler)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("newHandler(%T): got %v, want an error containing %q", c.handler, err, c.want)
		}
	}
}

func noGoexit(t *testing.T) func(*errorBody) {
	return func(b *errorBody) { t.Errorf("unexpected Goexit: %+v", b) }
}

func mustHandler(t *testing.T, h any) *handlerFunc {
	t.Helper()
	hf, err := newHandler(h)
	if err != nil {
		t.Fatal(err)
	}
	return hf
}

func TestInvokeOutcomes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		handler any
		payload string
		result  string
		kind    string
		message string
	}{
		{"struct payload", func(e event) event { return e }, `{"name":"x","extra":1}`, `{"name":"x"}`, "", ""},
		{"no result", func() {}, `1`, `null`, "", ""},
		{"missing payload", func(e *event) bool { return e == nil }, ``, `true`, "", ""},
		{"no HTML escaping", func() string { return "<&>" }, ``, `"<&>"`, "", ""},
		{"errors.New", func() error { return errors.New("boom") }, ``, ``, "errorString", "boom"},
		{"typed error", func() (int, error) { return 0, &notFound{"x"} }, ``, ``, "notFound", "x not found"},
		{"typed nil error", func() (int, *notFound) { return 1, nil }, ``, `1`, "", ""},
		{"wrapped error", func() error { return fmt.Errorf("open: %w", fs.ErrNotExist) }, ``, ``, "wrapError", "open: file does not exist"},
		{"ErrorKind", func() error { return fmt.Errorf("w: %w", kinded{}) }, ``, ``, "Custom", "w: kinded"},
		{"bad payload", func(e event) {}, `[1]`, ``, "UnmarshalTypeError", "does not decode into runwarm.event"},
		{"panic", func() { panic("oops") }, ``, ``, "panic", "oops"},
		{"nil map panic", func() { var m map[string]int; m["a"] = 1 }, ``, ``, "panic", "assignment to entry in nil map"},
		{"unencodable", func() any { return make(chan int) }, ``, ``, "SerializationError", "chan int"},
	} {
		result, fail := mustHandler(t, c.handler).invoke(ctx, json.RawMessage(c.payload), noGoexit(t))
		switch {
		case c.kind == "" && fail != nil:
			t.Errorf("%s: unexpected failure %+v", c.name, fail)
		case c.kind == "" && string(result) != c.result:
			t.Errorf("%s: result %s, want %s", c.name, result, c.result)
		case c.kind != "" && fail == nil:
			t.Errorf("%s: succeeded with %s, want kind %s", c.name, result, c.kind)
		case c.kind != "" && (fail.Kind != c.kind || !strings.Contains(fail.Message, c.message)):
			t.Errorf("%s: got %+v, want kind %s and message containing %q", c.name, fail, c.kind, c.message)
		}
	}
}

func TestPanicTraceNamesTheHandler(t *testing.T) {
	_, fail := mustHandler(t, panickingHandler).invoke(context.Background(), nil, noGoexit(t))
	if fail == nil || !strings.Contains(fail.Trace, "panickingHandler") {
		t.Fatalf("trace does not name the handler: %+v", fail)
	}
	for _, shim := range []string{"debug.Stack", "recovered", "panic(", "invoke"} {
		if strings.Contains(fail.Trace, shim) {
			t.Errorf("trace shows the shim's %s:\n%s", shim, fail.Trace)
		}
	}
}

func panickingHandler() { panic("in the handler") }

func TestInvokePassesTheContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	result, fail := mustHandler(t, func(ctx context.Context) any { return ctx.Value(key{}) }).invoke(ctx, nil, noGoexit(t))
	if fail != nil || string(result) != `"v"` {
		t.Fatalf("got %s, %+v", result, fail)
	}
}
