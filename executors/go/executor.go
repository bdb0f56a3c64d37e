package runwarm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// inbound is every supervisor message in one struct. The variable parts stay raw so that a
// member of an unexpected type fails only the message that needs it, not the line.
type inbound struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id"`
	Protocol json.RawMessage `json:"protocol"`
	Script   json.RawMessage `json:"script"`
	Env      json.RawMessage `json:"env"`
	Payload  json.RawMessage `json:"payload"`
	Context  json.RawMessage `json:"context"`
}

type initScript struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Root    string `json:"root"`
	Entry   string `json:"entry"`
	Handler string `json:"handler"`
	Mode    string `json:"mode"`
}

type requestContext struct {
	ExecutionID string `json:"execution_id"`
	DeadlineMs  int64  `json:"deadline_ms"`
	Attempt     int    `json:"attempt"`
	Caller      Caller `json:"caller"`
}

type readyMsg struct {
	Type     string `json:"type"`
	Protocol int    `json:"protocol"`
	Runtime  string `json:"runtime"`
	PID      int    `json:"pid"`
}

type initErrorMsg struct {
	Type  string     `json:"type"`
	Error *errorBody `json:"error"`
}

type pongMsg struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
}

type logMsg struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Level   string          `json:"level"`
	Message string          `json:"message"`
	Fields  map[string]any  `json:"fields,omitempty"`
}

type failureMsg struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Success bool            `json:"success"`
	Error   *errorBody      `json:"error"`
}

// channel is the protocol output. Each line goes out in one locked Write, so a Log from a user
// goroutine can never interleave with a response.
type channel struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *channel) send(line []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.w.Write(line) // os.File.Write writes everything or fails
	return err
}

type executor struct {
	in      *bufio.Reader
	out     *channel
	reg     *registry
	handler *handlerFunc // set by a successful init
	stderr  io.Writer
	exit    func(code int) // os.Exit; tests replace it
	stopped bool
}

func newExecutor(in io.Reader, out io.Writer, reg *registry) *executor {
	return &executor{
		in:     bufio.NewReaderSize(in, 64<<10),
		out:    &channel{w: out},
		reg:    reg,
		stderr: os.Stderr,
		exit:   os.Exit,
	}
}

func (e *executor) note(format string, args ...any) {
	fmt.Fprintf(e.stderr, "runwarm: "+format+"\n", args...)
}

func (e *executor) stop(code int) {
	e.stopped = true
	e.exit(code)
}

// serve handles messages one at a time in arrival order until shutdown or EOF.
func (e *executor) serve() {
	for !e.stopped {
		line, err := e.in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			e.dispatch(line) // a last line without "\n" still counts
		}
		if e.stopped {
			return
		}
		if err == io.EOF {
			e.stop(0) // the supervisor is gone
		} else if err != nil {
			e.note("reading the protocol input: %v", err)
			e.stop(1)
		}
	}
}

func (e *executor) dispatch(line []byte) {
	var m inbound
	if err := json.Unmarshal(line, &m); err != nil {
		e.note("ignoring unreadable protocol line (%v)", err)
		return
	}
	switch m.Type {
	case "request":
		e.request(&m)
	case "ping":
		e.sendMsg(pongMsg{Type: "pong", ID: m.ID})
	case "init":
		e.init(&m)
	case "shutdown":
		e.stop(0)
	default:
		// A newer supervisor's message (PROTOCOL.md §3): ignored.
	}
}

func (e *executor) sendMsg(msg any) {
	line, err := encodeLine(msg)
	if err == nil {
		err = e.out.send(line)
	}
	if err != nil {
		e.note("writing to the supervisor: %v", err)
		e.stop(1)
	}
}

func (e *executor) init(m *inbound) {
	if e.handler != nil {
		e.note("ignoring a second init")
		return
	}
	h, fail := e.load(m)
	if fail != nil {
		e.sendMsg(initErrorMsg{Type: "init_error", Error: fail})
		if !e.stopped {
			e.stop(1)
		}
		return
	}
	e.handler = h
	e.sendMsg(readyMsg{
		Type:     "ready",
		Protocol: protocolVersion,
		Runtime:  runtime.Version(),
		PID:      os.Getpid(),
	})
}

// load does what loading the entry means for the other shims: it checks the protocol and the
// mode, applies env, checks that root/entry exists, changes into root and picks the handler.
// The code itself was linked into this binary at build time.
func (e *executor) load(m *inbound) (*handlerFunc, *errorBody) {
	if len(m.Protocol) > 0 {
		var p float64
		if err := json.Unmarshal(m.Protocol, &p); err != nil || p != protocolVersion {
			return nil, &errorBody{Kind: kindUnsupportedProtocol,
				Message: fmt.Sprintf("this executor speaks protocol %d, not %s", protocolVersion, m.Protocol)}
		}
	}
	var script initScript
	if err := unmarshalOptional(m.Script, &script); err != nil {
		return nil, &errorBody{Kind: errorKind(err), Message: "init.script: " + err.Error()}
	}
	if script.Mode != "" && script.Mode != "handler" {
		return nil, &errorBody{Kind: kindUnsupportedMode,
			Message: fmt.Sprintf("the go executor serves handler mode only, not %q", script.Mode)}
	}
	var env map[string]any
	if err := unmarshalOptional(m.Env, &env); err != nil {
		return nil, &errorBody{Kind: errorKind(err), Message: "init.env: " + err.Error()}
	}
	for k, v := range env {
		if err := os.Setenv(k, envString(v)); err != nil {
			return nil, &errorBody{Kind: errorKind(err), Message: fmt.Sprintf("init.env %q: %v", k, err)}
		}
	}
	root := script.Root
	if root == "" {
		root = "."
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, &errorBody{Kind: errorKind(err), Message: "init.script.root: " + err.Error()}
	}
	// A Go script's entry may be its package directory as well as a file in it.
	if _, err := os.Stat(filepath.Join(root, script.Entry)); err != nil || script.Entry == "" {
		return nil, &errorBody{Kind: kindEntryNotFound,
			Message: fmt.Sprintf("entry %q not found in %s", script.Entry, root)}
	}
	if err := os.Chdir(root); err != nil {
		return nil, &errorBody{Kind: errorKind(err), Message: err.Error()}
	}
	name := script.Handler
	if name == "" {
		name = "handler"
	}
	return e.reg.lookup(name)
}

func unmarshalOptional(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// envString renders an env value: strings as they are, null as "", anything else as its JSON.
func envString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	b, err := encodeJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (e *executor) request(m *inbound) {
	if e.handler == nil {
		e.sendMsg(failureMsg{Type: "response", ID: m.ID, Success: false,
			Error: &errorBody{Kind: "NotInitialized", Message: "request before init"}})
		return
	}
	rc := requestContext{Attempt: 1}
	if err := unmarshalOptional(m.Context, &rc); err != nil {
		e.sendMsg(failureMsg{Type: "response", ID: m.ID, Success: false,
			Error: &errorBody{Kind: errorKind(err), Message: "request.context: " + err.Error()}})
		return
	}
	c := &Context{
		ExecutionID: rc.ExecutionID,
		DeadlineMs:  rc.DeadlineMs,
		Attempt:     rc.Attempt,
		Caller:      rc.Caller,
		rawID:       m.ID,
		out:         e.out,
	}
	_ = json.Unmarshal(m.ID, &c.RequestID) // stays "" for an id that is not a string
	var ctx context.Context
	var cancel context.CancelFunc
	if c.DeadlineMs > 0 {
		ctx, cancel = context.WithDeadline(context.Background(), time.UnixMilli(c.DeadlineMs))
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	result, fail := e.handler.invoke(NewContext(ctx, c), m.Payload, func(fail *errorBody) {
		// This goroutine is ending; another one answers and serves on.
		go func() {
			cancel()
			e.sendMsg(failureMsg{Type: "response", ID: m.ID, Success: false, Error: fail})
			e.serve()
		}()
	})
	// Work the handler left running sees the request end.
	cancel()
	// os.Stdout and os.Stderr are unbuffered and the handler's children have been waited for,
	// so the user output of this request is already in its pipes: nothing to flush here.
	if fail != nil {
		e.sendMsg(failureMsg{Type: "response", ID: m.ID, Success: false, Error: fail})
		return
	}
	// Spliced by hand: re-encoding the result inside a struct would copy and validate it again.
	id := m.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	line := make([]byte, 0, len(result)+len(id)+64)
	line = append(line, `{"type":"response","id":`...)
	line = append(line, id...)
	line = append(line, `,"success":true,"result":`...)
	line = append(line, result...)
	line = append(line, "}\n"...)
	if err := e.out.send(line); err != nil {
		e.note("writing to the supervisor: %v", err)
		e.stop(1)
	}
}
