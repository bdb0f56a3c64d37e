def handler(event, context):
    name = event.get("name", "world")
    return {"greeting": f"hello {name}"}
