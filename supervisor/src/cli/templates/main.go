// Handler mode: runwarm builds this program once at registration (go build; no go.mod is
// needed until you add dependencies, then go.mod and go.sum are downloaded once) and runs it
// as a warm executor: runwarm.Start calls handler per invocation. The payload (checked against
// [params] in runwarm.toml first) is decoded into Event; the returned value is the result, as
// JSON. A returned error or a panic fails the invocation (E002).
package main

import (
	"context"

	"runwarm.dev/runwarm"
)

// Event is the payload.
type Event struct {
	Name string `json:"name"`
}

func handler(ctx context.Context, e Event) (map[string]string, error) {
	name := e.Name
	if name == "" {
		name = "world"
	}
	if rc, ok := runwarm.FromContext(ctx); ok {
		rc.Log("info", "greeting", map[string]any{"who": name}) // a structured log record
	}
	return map[string]string{"greeting": "hello " + name}, nil
}

func main() { runwarm.Start(handler) }
