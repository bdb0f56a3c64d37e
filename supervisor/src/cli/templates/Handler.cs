// Handler mode: runwarm compiles this file once at registration (mcs, Mono) and a warm
// executor calls Handler.handler per invocation. `ev` is the JSON payload (checked against
// [params] in runwarm.toml first); the returned object is the result, as JSON (anonymous types
// work). A thrown exception fails the invocation (E002) with its type, message and trace.

using System.Collections.Generic;

public static class Handler
{
    public static object handler(Dictionary<string, object> ev, Runwarm.Context ctx)
    {
        object name;
        if (!ev.TryGetValue("name", out name) || name == null)
            name = "world";
        // A structured log record of this execution.
        ctx.Log("greeting", "info", new Dictionary<string, object> { { "who", name } });
        return new Dictionary<string, object> { { "greeting", "hello " + name } };
    }
}
