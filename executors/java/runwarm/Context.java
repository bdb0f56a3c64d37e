package runwarm;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a handler gets besides the event: the request's identity and deadline, and {@link #log}, a
 * structured log that the supervisor files under this execution.
 *
 * <p>A handler declares it as its second parameter: {@code public static Object handler(
 * Map<String, Object> event, runwarm.Context context)}. It is valid for one request; a thread that
 * outlives the request may still call {@link #log}, but the supervisor drops those records.
 */
public final class Context {
    private final Object requestId;
    private final String executionId;
    private final long deadlineMs;
    private final int attempt;
    private final Map<String, Object> caller;
    private final Channel channel;

    Context(Object requestId, Map<?, ?> context, Channel channel) {
        this.requestId = requestId;
        this.executionId = context.get("execution_id") instanceof String
                ? (String) context.get("execution_id")
                : "";
        this.deadlineMs = longOr(context.get("deadline_ms"), 0);
        this.attempt = (int) Math.min(Integer.MAX_VALUE, longOr(context.get("attempt"), 1));
        Map<String, Object> who = new LinkedHashMap<>();
        if (context.get("caller") instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) context.get("caller")).entrySet()) {
                who.put(String.valueOf(e.getKey()), e.getValue());
            }
        }
        this.caller = Collections.unmodifiableMap(who);
        this.channel = channel;
    }

    private static long longOr(Object value, long fallback) {
        return value instanceof Number ? ((Number) value).longValue() : fallback;
    }

    /** The protocol id of this request. */
    public String requestId() {
        return String.valueOf(requestId);
    }

    /** The execution this request belongs to; a retry keeps the id and raises {@link #attempt}. */
    public String executionId() {
        return executionId;
    }

    /** The deadline in milliseconds since the Unix epoch. */
    public long deadlineMs() {
        return deadlineMs;
    }

    /** Which attempt of the execution this is, from 1. */
    public int attempt() {
        return attempt;
    }

    /** Who asked: {@code uid}, {@code gid} and {@code pid} (Long values), when known. */
    public Map<String, Object> caller() {
        return caller;
    }

    /** Milliseconds left until the deadline, never negative. */
    public long remainingMs() {
        return Math.max(0, deadlineMs - System.currentTimeMillis());
    }

    /** {@link #remainingMs()} under the name AWS Lambda's Java context uses. */
    public int getRemainingTimeInMillis() {
        return (int) Math.min(Integer.MAX_VALUE, remainingMs());
    }

    /** Logs {@code message} at level {@code info}. */
    public void log(String message) {
        log("info", message, null);
    }

    /** Logs {@code message} at {@code level}: {@code debug}, {@code info}, {@code warn} or {@code error}. */
    public void log(String level, String message) {
        log(level, message, null);
    }

    /**
     * Logs {@code message} at {@code level} with structured {@code fields} (may be null). Field
     * values are encoded like handler results, except that a value with no JSON encoding is
     * written as null instead of failing.
     *
     * @throws IllegalArgumentException if {@code level} is not one of the four levels; the level
     *     comes first, so this catches {@code log(message, level)} written the other way round
     */
    public void log(String level, String message, Map<String, ?> fields) {
        String lvl = level == null ? "info" : level.toLowerCase(java.util.Locale.ROOT);
        switch (lvl) {
            case "debug":
            case "info":
            case "warn":
            case "error":
                break;
            case "warning":
                lvl = "warn";
                break;
            default:
                throw new IllegalArgumentException("log level must be debug, info, warn or error, not \""
                        + level + "\" (the level is the first argument: log(level, message))");
        }
        StringBuilder json = new StringBuilder(96).append("{\"type\":\"log\",\"id\":");
        Json.writeLenient(json, requestId);
        json.append(",\"level\":\"").append(lvl).append("\",\"message\":");
        Json.writeLenient(json, String.valueOf(message));
        if (fields != null && !fields.isEmpty()) {
            json.append(",\"fields\":");
            Json.writeLenient(json, fields);
        }
        // Output printed before the log record must reach the supervisor before it, as in a response.
        Channel.flushUserOutput();
        channel.send(json.append('}'));
    }

    @Override
    public String toString() {
        return "Context[request " + requestId() + ", execution " + executionId + ", attempt "
                + attempt + ", " + remainingMs() + " ms left]";
    }
}
