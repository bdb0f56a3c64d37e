// Package runwarm turns a Go program into a runwarm executor, the way aws-lambda-go's
// lambda.Start turns one into a Lambda function: the program's main calls Start(handler), and
// the binary then speaks the executor protocol (protocol/PROTOCOL.md in the runwarm repository)
// on stdin and stdout, calling handler once per request until shutdown.
//
// A handler is a function of one of these forms, where E is any type encoding/json can decode
// the payload into and R any type it can encode:
//
//	func()
//	func(E)
//	func(context.Context)
//	func(context.Context, E)
//
// returning nothing, R, error, or (R, error). The context.Context carries the request's deadline
// and a *Context (see FromContext) with the execution id, attempt, caller and Log.
//
// User output: when the process runs as an executor (RUNWARM_PROTOCOL is set), this package's
// init moves fd 1, os.Stdout and what child processes inherit to the fd named in
// RUNWARM_STDOUT_FD, and fd 0 to /dev/null, before the main package's own init and main run.
// The protocol uses private copies of the original fds 0 and 1.
package runwarm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

const protocolVersion = 1

// Start serves handler until the supervisor sends shutdown or closes stdin, then exits the
// process with status 0. It does not return.
//
// Go builds one handler per binary, so the handler name in init (script.handler) is not checked:
// handler serves whatever name the script's configuration gives. Use StartNamed to let that name
// choose among several handlers.
//
// An invalid handler signature is reported to the supervisor as init_error (kind
// HandlerNotCallable), and also written to stderr at once.
func Start(handler any) {
	run(singleRegistry(handler))
}

// StartNamed is Start for a binary with several handlers: init's script.handler picks one by
// name, and a name that is not in handlers is init_error HandlerNotFound. Every handler's
// signature is checked before init is read; one invalid handler fails init whichever is asked for.
func StartNamed(handlers map[string]any) {
	run(namedRegistry(handlers))
}

func singleRegistry(handler any) *registry {
	h, err := newHandler(handler)
	reg := &registry{fallback: h}
	if err != nil {
		reg.invalid = &errorBody{Kind: kindHandlerNotCallable, Message: "runwarm.Start: " + err.Error()}
	}
	return reg
}

func namedRegistry(handlers map[string]any) *registry {
	reg := &registry{named: make(map[string]*handlerFunc, len(handlers))}
	names := make([]string, 0, len(handlers))
	for name := range handlers {
		names = append(names, name)
	}
	sort.Strings(names) // so that the reported error does not depend on map order
	for _, name := range names {
		h, err := newHandler(handlers[name])
		if err != nil && reg.invalid == nil {
			reg.invalid = &errorBody{
				Kind:    kindHandlerNotCallable,
				Message: fmt.Sprintf("runwarm.StartNamed: handler %q: %v", name, err),
			}
		}
		reg.named[name] = h
	}
	return reg
}

// registry holds what Start or StartNamed was given, until init names the handler to serve.
type registry struct {
	fallback *handlerFunc            // Start: serves any name
	named    map[string]*handlerFunc // StartNamed
	invalid  *errorBody              // a signature error, reported at init
}

func (r *registry) lookup(name string) (*handlerFunc, *errorBody) {
	if r.invalid != nil {
		return nil, r.invalid
	}
	if r.fallback != nil {
		return r.fallback, nil
	}
	if h, ok := r.named[name]; ok {
		return h, nil
	}
	names := make([]string, 0, len(r.named))
	for n := range r.named {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	have := "none"
	if len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	return nil, &errorBody{
		Kind:    kindHandlerNotFound,
		Message: fmt.Sprintf("this binary has no handler named %q (it has %s)", name, have),
	}
}

// Caller identifies the process that invoked the script, from the supervisor socket's peer
// credentials.
type Caller struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	PID int32  `json:"pid"`
}

// Context is the request context besides the payload. Get it with FromContext.
type Context struct {
	// RequestID is the protocol id of the request; log messages carry it.
	RequestID string
	// ExecutionID identifies the execution across retries' logs and results.
	ExecutionID string
	// DeadlineMs is the deadline in milliseconds since the Unix epoch, 0 if none was given.
	DeadlineMs int64
	// Attempt counts from 1.
	Attempt int
	// Caller is who invoked the script.
	Caller Caller

	rawID json.RawMessage // echoed verbatim, whatever JSON the supervisor sent
	out   *channel
}

type contextKey struct{}

// FromContext returns the runwarm request context that the executor puts in the
// context.Context it passes to the handler.
func FromContext(ctx context.Context) (*Context, bool) {
	c, ok := ctx.Value(contextKey{}).(*Context)
	return c, ok && c != nil
}

// NewContext returns a copy of parent that carries c, for calling a handler in a unit test. Log
// on a Context made this way writes an @@ line to stderr instead of a protocol message.
func NewContext(parent context.Context, c *Context) context.Context {
	return context.WithValue(parent, contextKey{}, c)
}

// Deadline is DeadlineMs as a time.Time.
func (c *Context) Deadline() time.Time {
	return time.UnixMilli(c.DeadlineMs)
}

// RemainingMs is the number of milliseconds until the deadline, never negative.
func (c *Context) RemainingMs() int64 {
	if c == nil || c.DeadlineMs == 0 {
		return 0
	}
	left := c.DeadlineMs - time.Now().UnixMilli()
	if left < 0 {
		return 0
	}
	return left
}

// Log sends a structured log record for this request to the supervisor, which files it under
// the execution. level is debug, info, warn or error ("" means info); fields may be nil. Log is
// safe to call from any goroutine. A record logged after the handler returned is dropped by the
// supervisor.
//
// Outside an executor (a nil Context, or one from NewContext) the record goes to stderr as an
// @@ line, the structured log form of PROTOCOL.md §6.
func (c *Context) Log(level, message string, fields map[string]any) {
	if level == "" {
		level = "info"
	}
	if c == nil || c.out == nil {
		logToStderr(level, message, fields)
		return
	}
	msg := logMsg{Type: "log", ID: c.rawID, Level: level, Message: message, Fields: fields}
	line, err := encodeLine(msg)
	if err != nil {
		// A field with no JSON form must not cost the whole record.
		msg.Fields = printable(fields)
		if line, err = encodeLine(msg); err != nil {
			return
		}
	}
	// A write error means the supervisor is gone; the serve loop sees EOF and exits.
	_ = c.out.send(line)
}

func logToStderr(level, message string, fields map[string]any) {
	record := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		record[k] = v
	}
	record["level"] = level
	record["message"] = message
	line, err := encodeLine(record)
	if err != nil {
		for k, v := range printable(fields) {
			record[k] = v
		}
		if line, err = encodeLine(record); err != nil {
			return
		}
	}
	os.Stderr.Write(append([]byte("@@"), line...))
}

func printable(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		if _, err := encodeJSON(v); err != nil {
			out[k] = fmt.Sprintf("%+v", v)
		} else {
			out[k] = v
		}
	}
	return out
}

// encodeJSON is json.Marshal without HTML escaping (the lines are not HTML, and "<" stays
// readable), and with panics in user MarshalJSON methods turned into errors.
func encodeJSON(v any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while encoding: %v", r)
		}
	}()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode appends "\n"
}

// encodeLine is encodeJSON plus the "\n" that ends a protocol line.
func encodeLine(v any) ([]byte, error) {
	b, err := encodeJSON(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
