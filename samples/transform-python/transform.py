import json


def handler(event, context):
    lines = [
        {"sku": item["sku"], "qty": item["qty"], "total": round(item["qty"] * item["price"], 2)}
        for item in event["items"]
    ]
    lines.sort(key=lambda line: line["total"], reverse=True)
    total = round(sum(line["total"] for line in lines), 2)
    # A line starting with @@ and a JSON object becomes a structured log record.
    print("@@" + json.dumps({"level": "info", "message": "order totalled", "lines": len(lines)}))
    return {"currency": event.get("currency", "EUR"), "total": total, "lines": lines}
