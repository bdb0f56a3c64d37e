package runwarm

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// converse runs an executor over the given input lines and returns its output, decoded and raw,
// and the exit code it asked for.
func converse(t *testing.T, reg *registry, lines ...string) ([]map[string]any, string, int) {
	t.Helper()
	if wd, err := os.Getwd(); err == nil {
		defer os.Chdir(wd) // init changes into root
	}
	var out, stderr bytes.Buffer
	e := newExecutor(strings.NewReader(strings.Join(lines, "\n")+"\n"), &out, reg)
	e.stderr = &stderr
	code := -1
	e.exit = func(c int) {
		if code == -1 {
			code = c
		}
	}
	e.serve()
	var msgs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		msgs = append(msgs, m)
	}
	return msgs, out.String(), code
}

func initLine(t *testing.T, handler string) string {
	return `{"type":"init","protocol":1,"script":{"name":"n","version":"v","root":"` + t.TempDir() +
		`","entry":".","handler":"` + handler + `","mode":"handler"},"env":{"RUNWARM_TEST_ENV":"yes"}}`
}

const req = `{"type":"request","id":"r1","payload":{"name":"x"},"context":{"execution_id":"e","deadline_ms":4102444800000,"attempt":3,"caller":{"uid":1,"gid":2,"pid":3}}}`

func TestConversation(t *testing.T) {
	h := func(ctx context.Context, e event) (map[string]any, error) {
		rc, _ := FromContext(ctx)
		rc.Log("warn", "hi", map[string]any{"n": 2, "f": func() {}})
		deadline, _ := ctx.Deadline()
		return map[string]any{"name": e.Name, "attempt": rc.Attempt, "id": rc.RequestID,
			"deadline": deadline.UnixMilli(), "uid": rc.Caller.UID}, nil
	}
	reg := &registry{fallback: mustHandler(t, h)}
	msgs, raw, code := converse(t, reg, initLine(t, "whatever"), `{"type":"from_the_future"}`, `not json`,
		req, `{"type":"ping","id":"p"}`, `{"type":"shutdown","grace_ms":1}`, req)
	if code != 0 {
		t.Errorf("exit code %d", code)
	}
	want := []string{`"type":"ready"`, `"runtime":"go`, `"type":"log","id":"r1","level":"warn","message":"hi"`,
		`"f":"0x`, `"type":"response","id":"r1","success":true`, `"attempt":3`, `"deadline":4102444800000`,
		`"id":"r1"`, `"uid":1`, `"type":"pong","id":"p"`}
	for _, w := range want {
		if !strings.Contains(raw, w) {
			t.Errorf("output lacks %s: %s", w, raw)
		}
	}
	if len(msgs) != 4 {
		t.Errorf("want ready, log, response, pong and nothing after shutdown; got %s", raw)
	}
}

func TestInitErrors(t *testing.T) {
	ok := mustHandler(t, func() {})
	for _, c := range []struct {
		name string
		reg  *registry
		init string
		kind string
		msg  string
	}{
		{"missing entry", &registry{fallback: ok},
			`{"type":"init","protocol":1,"script":{"root":"/","entry":"does-not-exist.xyz"}}`, kindEntryNotFound,
			`entry "does-not-exist.xyz" not found in /`},
		{"protocol", &registry{fallback: ok}, `{"type":"init","protocol":2,"script":{}}`, kindUnsupportedProtocol,
			"speaks protocol 1, not 2"},
		{"mode", &registry{fallback: ok},
			`{"type":"init","protocol":1,"script":{"root":"/","entry":".","mode":"command"}}`, kindUnsupportedMode,
			`not "command"`},
		{"bad signature", singleRegistry(func(int, int) {}), initLine(t, "handler"), kindHandlerNotCallable,
			"runwarm.Start: handler func(int, int) takes two arguments but the first is int"},
		{"one bad named signature", namedRegistry(map[string]any{"a": func() {}, "b": 1}),
			initLine(t, "a"), kindHandlerNotCallable, `runwarm.StartNamed: handler "b": handler is a int`},
		{"unknown name", namedRegistry(map[string]any{"a": func() {}, "b": func() {}}),
			initLine(t, "c"), kindHandlerNotFound, `no handler named "c" (it has "a", "b")`},
	} {
		msgs, _, code := converse(t, c.reg, c.init, req)
		if code != 1 || len(msgs) != 1 || msgs[0]["type"] != "init_error" {
			t.Errorf("%s: want one init_error and exit 1, got %v, exit %d", c.name, msgs, code)
			continue
		}
		body := msgs[0]["error"].(map[string]any)
		if msg, _ := body["message"].(string); body["kind"] != c.kind || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: got %v, want kind %s and a message containing %q", c.name, body, c.kind, c.msg)
		}
	}
}

func TestNamedHandlerIsChosenByInit(t *testing.T) {
	reg := namedRegistry(map[string]any{
		"a":       func() string { return "a" },
		"handler": func() string { return "default" },
	})
	msgs, _, _ := converse(t, reg, initLine(t, "a"), req)
	if len(msgs) != 2 || msgs[1]["result"] != "a" {
		t.Fatalf("got %v", msgs)
	}
}

func TestRequestBeforeInitAndEOF(t *testing.T) {
	msgs, _, code := converse(t, &registry{fallback: mustHandler(t, func() {})}, req)
	if code != 0 || len(msgs) != 1 || msgs[0]["success"] != false {
		t.Fatalf("got %v, exit %d", msgs, code)
	}
}
