package runwarm;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.UndeclaredThrowableException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Map;

/**
 * runwarm executor shim for Java (protocol v1, handler mode): speaks the JSON Lines protocol of
 * protocol/PROTOCOL.md on stdin/stdout, loads the script's class once at {@code init} and calls
 * its static handler method once per {@code request}.
 *
 * <p>Start it as {@code java -cp <classes> runwarm.Executor}, with the shim's sources compiled
 * together with the user's. See executors/java/README.md.
 *
 * <p>Start-up cost: the code that runs before {@code ready} and on every successful request uses
 * no invokedynamic. javac compiles {@code "a" + b} to invokedynamic, and the first one bootstraps
 * the method-handle machinery, about 15 ms; the first lambda costs about 5 ms. Those paths use
 * StringBuilder and loops instead; error paths, which run rarely, use {@code +} freely.
 */
public final class Executor {
    static final int PROTOCOL_VERSION = 1;

    private final LineReader in;
    private final Channel channel;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private Loader.Handler handler;

    private Executor(InputStream in, Channel channel) {
        this.in = new LineReader(in);
        this.channel = channel;
    }

    public static void main(String[] args) {
        Stdio stdio = Stdio.takeOver();
        new Executor(stdio.protocolIn, new Channel(stdio.protocolOut)).serve();
    }

    private void serve() {
        while (true) {
            byte[] line;
            try {
                line = in.readLine();
            } catch (IOException e) {
                System.err.println("runwarm: reading the protocol input failed (" + e.getMessage()
                        + "); exiting");
                line = null;
            }
            if (line == null) {
                exit(0); // EOF: the supervisor is gone
                return;
            }
            Map<?, ?> msg;
            try {
                String text = utf8.decode(ByteBuffer.wrap(line)).toString();
                if (text.isBlank()) {
                    continue;
                }
                Object value = Json.parse(text);
                if (!(value instanceof Map)) {
                    throw new IllegalArgumentException(Loader.jsonType(value) + ", not an object");
                }
                msg = (Map<?, ?>) value;
            } catch (CharacterCodingException | IllegalArgumentException e) {
                System.err.println("runwarm: ignoring an unreadable protocol line (" + e.getMessage() + ")");
                continue;
            }
            Object type = msg.get("type");
            if ("request".equals(type)) {
                request(msg);
            } else if ("ping".equals(type)) {
                StringBuilder pong = new StringBuilder(48).append("{\"type\":\"pong\",\"id\":");
                Json.writeLenient(pong, msg.get("id"));
                channel.send(pong.append('}'));
            } else if ("init".equals(type)) {
                init(msg);
            } else if ("shutdown".equals(type)) {
                exit(0);
            }
            // Any other type comes from a newer supervisor and is ignored (PROTOCOL.md section 3).
        }
    }

    private void init(Map<?, ?> msg) {
        if (handler != null) {
            System.err.println("runwarm: ignoring a second init");
            return;
        }
        try {
            Object protocol = msg.containsKey("protocol") ? msg.get("protocol") : (long) PROTOCOL_VERSION;
            if (!(protocol instanceof Long) || (Long) protocol != PROTOCOL_VERSION) {
                throw new Loader.InitFailure("UnsupportedProtocol", "this executor speaks protocol "
                        + PROTOCOL_VERSION + ", not " + Json.writeLenient(protocol));
            }
            Object script = msg.get("script");
            handler = Loader.load(script instanceof Map ? (Map<?, ?>) script : Map.of(), msg.get("env"));
        } catch (Loader.InitFailure e) {
            initError(e.kind, e.getMessage(), e.trace);
            return;
        } catch (Throwable e) { // a bug in the shim, or an Error while loading: still an answer
            initError(kindOf(e), messageOf(e), traceOf(e));
            return;
        }
        StringBuilder ready = new StringBuilder(80).append("{\"type\":\"ready\",\"protocol\":")
                .append(PROTOCOL_VERSION).append(",\"runtime\":");
        Json.writeLenient(ready, "java".concat(System.getProperty("java.version")));
        ready.append(",\"pid\":").append(pid()).append('}');
        Channel.flushUserOutput(); // what static initializers printed
        channel.send(ready);
    }

    /**
     * This process's pid. /proc/self first: ProcessHandle's set-up costs about 7 ms before
     * {@code ready}. The two differ only if /proc was mounted for another PID namespace, and the
     * supervisor does not act on this pid.
     */
    private static long pid() {
        try {
            return Long.parseLong(Files.readSymbolicLink(Paths.get("/proc/self")).toString());
        } catch (IOException | RuntimeException e) { // no /proc in this sandbox
            return ProcessHandle.current().pid();
        }
    }

    private void initError(String kind, String message, String trace) {
        StringBuilder json = new StringBuilder("{\"type\":\"init_error\",\"error\":");
        errorBody(json, kind, message, trace);
        Channel.flushUserOutput();
        channel.send(json.append('}'));
        // halt, not exit: shutdown hooks of a script that failed to load are not worth a hang.
        Runtime.getRuntime().halt(1);
    }

    private void request(Map<?, ?> msg) {
        Object id = msg.get("id");
        if (handler == null) {
            failure(id, "NotInitialized", "request before init", null);
            return;
        }
        Object ctx = msg.get("context");
        Context context = new Context(id, ctx instanceof Map ? (Map<?, ?>) ctx : Map.of(), channel);
        Object result;
        try {
            result = handler.invoke(msg.get("payload"), context);
        } catch (Throwable e) { // Errors too (StackOverflowError, AssertionError): the executor serves on
            failure(id, kindOf(e), messageOf(e), traceOf(trimmed(e)));
            return;
        }
        StringBuilder line = new StringBuilder(128).append("{\"type\":\"response\",\"id\":");
        Json.writeLenient(line, id);
        line.append(",\"success\":true,\"result\":");
        try {
            Json.write(line, result);
        } catch (Json.SerializationException e) {
            failure(id, "SerializationError", "result is not JSON: " + e.getMessage(), null);
            return;
        } catch (RuntimeException | StackOverflowError e) { // a collection whose iterator throws
            failure(id, "SerializationError", "result is not JSON: " + e, traceOf(e));
            return;
        }
        Channel.flushUserOutput();
        channel.send(line.append('}'));
    }

    private void failure(Object id, String kind, String message, String trace) {
        StringBuilder json = new StringBuilder(256).append("{\"type\":\"response\",\"id\":");
        Json.writeLenient(json, id);
        json.append(",\"success\":false,\"error\":");
        errorBody(json, kind, message, trace);
        Channel.flushUserOutput();
        channel.send(json.append('}'));
    }

    private static void errorBody(StringBuilder json, String kind, String message, String trace) {
        json.append("{\"kind\":");
        Json.writeLenient(json, kind);
        json.append(",\"message\":");
        Json.writeLenient(json, message);
        if (trace != null) {
            json.append(",\"trace\":");
            Json.writeLenient(json, trace);
        }
        json.append('}');
    }

    private static void exit(int code) {
        Channel.flushUserOutput();
        // System.exit runs shutdown hooks (Java's atexit) and does not wait for user threads,
        // so a thread that never ends cannot keep a retired executor alive.
        System.exit(code);
    }

    /** The exception a user wants to see: reflection wrappers removed. */
    private static Throwable unwrap(Throwable e) {
        while ((e instanceof InvocationTargetException || e instanceof UndeclaredThrowableException)
                && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    static String kindOf(Throwable e) {
        e = unwrap(e);
        String simple = e.getClass().getSimpleName();
        return simple.isEmpty() ? e.getClass().getName() : simple; // anonymous classes
    }

    static String messageOf(Throwable e) {
        e = unwrap(e);
        String message;
        try {
            message = e.getMessage();
        } catch (RuntimeException failed) {
            message = null;
        }
        return message == null || message.isEmpty() ? kindOf(e) : message;
    }

    static String traceOf(Throwable e) {
        StringWriter text = new StringWriter();
        try (PrintWriter out = new PrintWriter(text)) {
            unwrap(e).printStackTrace(out);
        } catch (RuntimeException failed) { // a user toString() in the chain
            return e.getClass().getName();
        }
        return text.toString();
    }

    /** Drops the frames of the shim and of reflection below the handler's own. */
    private static Throwable trimmed(Throwable e) {
        e = unwrap(e);
        StackTraceElement[] frames = e.getStackTrace();
        int end = frames.length;
        while (end > 0 && isShimFrame(frames[end - 1].getClassName())) {
            end--;
        }
        if (end < frames.length && end > 0) {
            e.setStackTrace(Arrays.copyOf(frames, end));
        }
        return e;
    }

    private static boolean isShimFrame(String cls) {
        return cls.equals(Executor.class.getName()) || cls.startsWith(Loader.class.getName())
                || cls.startsWith("jdk.internal.reflect.") || cls.equals("java.lang.reflect.Method");
    }

    /** Splits the protocol input into lines; bytes, so decoding errors can skip a line cleanly. */
    private static final class LineReader {
        private final InputStream in;
        private byte[] buf = new byte[64 * 1024];
        private int start;
        private int end;

        LineReader(InputStream in) {
            this.in = in;
        }

        /** The next line without its newline, or null at EOF (a last unterminated line counts). */
        byte[] readLine() throws IOException {
            int scan = start;
            while (true) {
                for (int k = scan; k < end; k++) {
                    if (buf[k] == '\n') {
                        byte[] line = Arrays.copyOfRange(buf, start, k);
                        start = k + 1;
                        return line;
                    }
                }
                scan = end;
                if (start > 0) { // make room at the back by moving the partial line forward
                    System.arraycopy(buf, start, buf, 0, end - start);
                    scan -= start;
                    end -= start;
                    start = 0;
                }
                if (end == buf.length) {
                    buf = Arrays.copyOf(buf, buf.length * 2);
                }
                int n = in.read(buf, end, buf.length - end);
                if (n < 0) {
                    if (start == end) {
                        return null;
                    }
                    byte[] line = Arrays.copyOfRange(buf, start, end);
                    start = end;
                    return line;
                }
                end += n;
            }
        }
    }
}
