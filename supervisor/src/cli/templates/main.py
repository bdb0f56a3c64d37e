# Handler mode: runwarm loads this file once per warm executor and calls handler() per
# invocation. `event` is the JSON payload (checked against [params] in runwarm.toml first);
# the return value is the result, as JSON. An exception fails the invocation (E002) with its
# type, message and traceback. What it prints goes to the execution's stdout.
# Dependencies: list them in requirements.txt; runwarm installs them once at registration.


def handler(event, context):
    name = event.get("name", "world")
    context.log("greeting", who=name)  # a structured log record of this execution
    return {"greeting": f"hello {name}"}
