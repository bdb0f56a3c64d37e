// Handler mode: runwarm compiles this file once at registration (javac, with the runwarm shim)
// and one warm JVM calls Main.handler per invocation. `event` is the JSON payload (checked
// against [params] in runwarm.toml first) as a Map; the returned value is the result, as JSON.
// A thrown exception fails the invocation (E002) with its class, message and stack trace.
// Dependencies: a pom.xml, resolved once at registration from Maven Central.

import java.util.Map;

import runwarm.Context;

public class Main {
    public static Object handler(Map<String, Object> event, Context context) {
        Object name = event.getOrDefault("name", "world");
        context.log("info", "greeting " + name); // a structured log record of this execution
        return Map.of("greeting", "hello " + name);
    }
}
