# Handler mode: runwarm loads this file once per warm executor and calls handler per
# invocation. `event` is the JSON payload (checked against [params] in runwarm.toml first), a
# Hash with string keys; the return value is the result, as JSON. An exception fails the
# invocation (E002) with its class, message and backtrace.

def handler(event, context)
  name = event.fetch("name", "world")
  context.log("greeting", level: :info, who: name) # a structured log record of this execution
  { greeting: "hello #{name}" }
end
