package runwarm;

import java.lang.reflect.Array;
import java.lang.reflect.RecordComponent;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A small, strict JSON (RFC 8259) reader and writer with no dependencies, so that the shim can be
 * compiled together with any user code. Handlers may use it too.
 *
 * <p>Reading: objects become {@code LinkedHashMap<String, Object>} (member order kept, the last
 * duplicate wins), arrays {@code ArrayList<Object>}, strings {@code String}, {@code true} and
 * {@code false} {@code Boolean}, {@code null} {@code null}. A number without fraction or exponent
 * is a {@code Long}, or a {@code BigInteger} if it does not fit; any other number is a {@code
 * Double}, or a {@code BigDecimal} if it overflows a double. Anything that is not exactly one JSON
 * value (trailing commas, comments, single quotes, NaN, leading zeros, raw control characters in
 * strings, a byte order mark) is rejected with a {@link ParseException} that names the offset.
 *
 * <p>Writing: {@code Map} (keys by {@code String.valueOf}), {@code Collection}, arrays (a {@code
 * char[]} is a string), records (by component), {@code Optional}, {@code CharSequence}, {@code
 * Character}, {@code Boolean}, {@code Number}, enums (by name) and {@code null} map to JSON as
 * expected; anything else is written as the string its {@code toString()} returns. The output is
 * compact, non-ASCII text is written as is (the protocol is UTF-8), and control characters are
 * escaped. Values with no JSON encoding (NaN, infinities, a lone UTF-16 surrogate, a container
 * that contains itself, nesting deeper than {@value #MAX_DEPTH}) make {@link #write} throw a
 * {@link SerializationException}.
 */
public final class Json {
    /** Deepest nesting read or written; deeper input would risk a StackOverflowError. */
    public static final int MAX_DEPTH = 1000;

    private Json() {}

    /** Thrown by {@link #parse} for text that is not exactly one JSON value. */
    public static final class ParseException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        private final int offset;

        ParseException(String message, int offset) {
            super("invalid JSON at offset " + offset + ": " + message);
            this.offset = offset;
        }

        /** The offset (in UTF-16 units) in the parsed text at which the problem was found. */
        public int offset() {
            return offset;
        }
    }

    /** Thrown by {@link #write} for a value that has no JSON encoding. */
    public static final class SerializationException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        SerializationException(String message) {
            super(message);
        }

        SerializationException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Parses exactly one JSON value, with optional surrounding whitespace. */
    public static Object parse(String text) {
        return new Parser(text).document();
    }

    /** Encodes a value as compact JSON; throws {@link SerializationException} if it cannot. */
    public static String write(Object value) {
        StringBuilder out = new StringBuilder(64);
        new Writer(out, true).value(value, 0);
        return out.toString();
    }

    /**
     * Appends the encoding of {@code value} to {@code out}, as {@link #write} does. On failure
     * {@code out} holds part of the encoding.
     */
    public static void write(StringBuilder out, Object value) {
        new Writer(out, true).value(value, 0);
    }

    /**
     * Like {@link #write}, but never fails: for error reports and log fields, where losing a
     * detail is better than losing the message. NaN and infinities become null, lone surrogates
     * U+FFFD, a cycle or excessive depth null, and a failing toString() a description of the
     * failure.
     */
    static String writeLenient(Object value) {
        StringBuilder out = new StringBuilder(64);
        new Writer(out, false).value(value, 0);
        return out.toString();
    }

    /** {@link #writeLenient(Object)}, appended to {@code out}. */
    static void writeLenient(StringBuilder out, Object value) {
        new Writer(out, false).value(value, 0);
    }

    private static final class Parser {
        private final String s;
        private final int n;
        private int i;
        private int depth;

        Parser(String s) {
            this.s = s;
            this.n = s.length();
        }

        Object document() {
            skipWhitespace();
            Object value = value();
            skipWhitespace();
            if (i < n) {
                throw fail("unexpected " + describe(i) + " after the JSON value");
            }
            return value;
        }

        private ParseException fail(String message) {
            return new ParseException(message, i);
        }

        private String describe(int at) {
            if (at >= n) {
                return "end of input";
            }
            char c = s.charAt(at);
            if (c < 0x20 || c == 0x7f || Character.isSurrogate(c) || c == 0xfeff) {
                return String.format("character U+%04X", (int) c);
            }
            return "'" + c + "'";
        }

        private void skipWhitespace() {
            while (i < n) {
                char c = s.charAt(i);
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                    i++;
                } else {
                    return;
                }
            }
        }

        private Object value() {
            if (i >= n) {
                throw fail("expected a value, found end of input");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    literal("true");
                    return Boolean.TRUE;
                case 'f':
                    literal("false");
                    return Boolean.FALSE;
                case 'n':
                    literal("null");
                    return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw fail("expected a value, found " + describe(i));
            }
        }

        private void literal(String word) {
            if (!s.startsWith(word, i)) {
                throw fail("expected '" + word + "'");
            }
            i += word.length();
        }

        private void enter() {
            if (++depth > MAX_DEPTH) {
                throw fail("nesting deeper than " + MAX_DEPTH);
            }
        }

        private Map<String, Object> object() {
            enter();
            i++; // '{'
            Map<String, Object> map = new LinkedHashMap<>();
            skipWhitespace();
            if (i < n && s.charAt(i) == '}') {
                i++;
                depth--;
                return map;
            }
            while (true) {
                if (i >= n || s.charAt(i) != '"') {
                    throw fail("expected a string member name, found " + describe(i));
                }
                String key = string();
                skipWhitespace();
                if (i >= n || s.charAt(i) != ':') {
                    throw fail("expected ':' after a member name, found " + describe(i));
                }
                i++;
                skipWhitespace();
                map.put(key, value());
                skipWhitespace();
                if (i < n && s.charAt(i) == ',') {
                    i++;
                    skipWhitespace();
                } else if (i < n && s.charAt(i) == '}') {
                    i++;
                    depth--;
                    return map;
                } else {
                    throw fail("expected ',' or '}' in an object, found " + describe(i));
                }
            }
        }

        private ArrayList<Object> array() {
            enter();
            i++; // '['
            ArrayList<Object> list = new ArrayList<>();
            skipWhitespace();
            if (i < n && s.charAt(i) == ']') {
                i++;
                depth--;
                return list;
            }
            while (true) {
                list.add(value());
                skipWhitespace();
                if (i < n && s.charAt(i) == ',') {
                    i++;
                    skipWhitespace();
                } else if (i < n && s.charAt(i) == ']') {
                    i++;
                    depth--;
                    return list;
                } else {
                    throw fail("expected ',' or ']' in an array, found " + describe(i));
                }
            }
        }

        private String string() {
            int start = ++i; // after the opening quote
            // Most strings have no escapes: find the end and take a substring.
            while (i < n) {
                char c = s.charAt(i);
                if (c == '"') {
                    return s.substring(start, i++);
                }
                if (c == '\\' || c < 0x20) {
                    break;
                }
                i++;
            }
            StringBuilder sb = new StringBuilder(i - start + 16).append(s, start, i);
            while (true) {
                if (i >= n) {
                    throw fail("unterminated string");
                }
                char c = s.charAt(i);
                if (c == '"') {
                    i++;
                    return sb.toString();
                }
                if (c < 0x20) {
                    throw fail("raw " + describe(i) + " in a string; control characters must be escaped");
                }
                if (c != '\\') {
                    sb.append(c);
                    i++;
                    continue;
                }
                if (++i >= n) {
                    throw fail("unterminated escape");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case '"':
                    case '\\':
                    case '/':
                        sb.append(e);
                        break;
                    case 'b':
                        sb.append('\b');
                        break;
                    case 'f':
                        sb.append('\f');
                        break;
                    case 'n':
                        sb.append('\n');
                        break;
                    case 'r':
                        sb.append('\r');
                        break;
                    case 't':
                        sb.append('\t');
                        break;
                    case 'u':
                        sb.append(hex4());
                        break;
                    default:
                        i--;
                        throw fail("invalid escape '\\" + e + "'");
                }
            }
        }

        private char hex4() {
            if (i + 4 > n) {
                throw fail("truncated \\u escape");
            }
            int v = 0;
            for (int k = 0; k < 4; k++) {
                int d = Character.digit(s.charAt(i), 16);
                if (d < 0 || s.charAt(i) > 'f') { // Character.digit also takes non-ASCII digits
                    throw fail("invalid hex digit " + describe(i) + " in a \\u escape");
                }
                v = v * 16 + d;
                i++;
            }
            // A lone surrogate is accepted, as RFC 8259 section 8.2 allows; write() rejects it later.
            return (char) v;
        }

        private Object number() {
            int start = i;
            boolean integral = true;
            if (s.charAt(i) == '-') {
                i++;
            }
            if (i < n && s.charAt(i) == '0') {
                i++;
                if (i < n && isDigit(s.charAt(i))) {
                    throw fail("leading zero in a number");
                }
            } else if (i < n && isDigit(s.charAt(i))) {
                digits();
            } else {
                throw fail("expected a digit, found " + describe(i));
            }
            if (i < n && s.charAt(i) == '.') {
                integral = false;
                i++;
                if (i >= n || !isDigit(s.charAt(i))) {
                    throw fail("expected a digit after '.', found " + describe(i));
                }
                digits();
            }
            if (i < n && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
                integral = false;
                i++;
                if (i < n && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
                    i++;
                }
                if (i >= n || !isDigit(s.charAt(i))) {
                    throw fail("expected a digit in the exponent, found " + describe(i));
                }
                digits();
            }
            String text = s.substring(start, i);
            if (integral) {
                if (text.length() <= 18) {
                    return Long.parseLong(text);
                }
                try {
                    return Long.parseLong(text);
                } catch (NumberFormatException tooBig) {
                    return new BigInteger(text);
                }
            }
            double d = Double.parseDouble(text);
            return Double.isInfinite(d) ? new BigDecimal(text) : (Object) d;
        }

        private void digits() {
            while (i < n && isDigit(s.charAt(i))) {
                i++;
            }
        }

        private static boolean isDigit(char c) {
            return c >= '0' && c <= '9';
        }

        /** Whether {@code text} is exactly one JSON number. */
        static boolean isNumber(String text) {
            if (text.isEmpty()) {
                return false;
            }
            char c = text.charAt(0);
            if (c != '-' && !isDigit(c)) {
                return false;
            }
            Parser p = new Parser(text);
            try {
                p.number();
            } catch (ParseException | NumberFormatException e) {
                return false;
            }
            return p.i == text.length();
        }
    }

    private static final class Writer {
        private static final char[] HEX = "0123456789abcdef".toCharArray();

        private final StringBuilder out;
        private final boolean strict;
        /** Containers on the path from the root, to detect cycles. */
        private IdentityHashMap<Object, Boolean> path;

        Writer(StringBuilder out, boolean strict) {
            this.out = out;
            this.strict = strict;
        }

        private void unencodable(String why) {
            if (strict) {
                throw new SerializationException(why);
            }
            out.append("null");
        }

        void value(Object v, int depth) {
            if (v == null) {
                out.append("null");
            } else if (v instanceof String) {
                string((String) v);
            } else if (v instanceof Boolean) {
                out.append(((Boolean) v).booleanValue());
            } else if (v instanceof Number) {
                number((Number) v);
            } else if (v instanceof Map || v instanceof Collection || v.getClass().isArray()
                    || v instanceof Record || v instanceof Optional) {
                container(v, depth);
            } else if (v instanceof CharSequence || v instanceof Character) {
                string(v.toString());
            } else if (v instanceof Enum) {
                string(((Enum<?>) v).name());
            } else {
                String text;
                try {
                    text = v.toString();
                } catch (RuntimeException | StackOverflowError e) {
                    if (strict) {
                        throw new SerializationException(
                                "toString() of a " + v.getClass().getName() + " failed: " + e, e);
                    }
                    text = "<" + v.getClass().getName() + ".toString() failed: " + e + ">";
                }
                string(text == null ? "null" : text);
            }
        }

        private void container(Object v, int depth) {
            if (depth >= MAX_DEPTH) {
                unencodable("nesting deeper than " + MAX_DEPTH);
                return;
            }
            if (path == null) {
                path = new IdentityHashMap<>();
            }
            if (path.put(v, Boolean.TRUE) != null) {
                unencodable("a " + v.getClass().getName() + " that contains itself");
                return;
            }
            if (v instanceof Map) {
                out.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    Object key = e.getKey();
                    string(key instanceof String ? (String) key : String.valueOf(key));
                    out.append(':');
                    value(e.getValue(), depth + 1);
                }
                out.append('}');
            } else if (v instanceof Collection) {
                out.append('[');
                boolean first = true;
                for (Object item : (Collection<?>) v) {
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    value(item, depth + 1);
                }
                out.append(']');
            } else if (v instanceof char[]) {
                string(new String((char[]) v));
            } else if (v.getClass().isArray()) {
                out.append('[');
                int len = Array.getLength(v);
                for (int k = 0; k < len; k++) {
                    if (k > 0) {
                        out.append(',');
                    }
                    value(Array.get(v, k), depth + 1);
                }
                out.append(']');
            } else if (v instanceof Optional) {
                value(((Optional<?>) v).orElse(null), depth + 1);
            } else {
                record(v, depth);
            }
            path.remove(v);
        }

        private void record(Object v, int depth) {
            out.append('{');
            boolean first = true;
            for (RecordComponent c : v.getClass().getRecordComponents()) {
                Object item;
                try {
                    var accessor = c.getAccessor();
                    // A record nested in a user class is often not public; the shim and the
                    // user's classes share the unnamed module, so this is allowed.
                    accessor.setAccessible(true);
                    item = accessor.invoke(v);
                } catch (ReflectiveOperationException | RuntimeException e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    if (strict) {
                        throw new SerializationException("reading record component " + c.getName()
                                + " of " + v.getClass().getName() + " failed: " + cause, cause);
                    }
                    item = "<" + cause + ">";
                }
                if (!first) {
                    out.append(',');
                }
                first = false;
                string(c.getName());
                out.append(':');
                value(item, depth + 1);
            }
            out.append('}');
        }

        private void number(Number v) {
            if (v instanceof Long || v instanceof Integer || v instanceof Short
                    || v instanceof Byte || v instanceof BigInteger) {
                out.append(v.toString());
            } else if (v instanceof Double || v instanceof Float) {
                double d = v.doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) {
                    unencodable("the number " + v + " has no JSON representation");
                } else {
                    // Double.toString gives "1.0E10", which is valid JSON.
                    out.append(v.toString());
                }
            } else if (v instanceof BigDecimal) {
                out.append(v.toString()); // "1E+3" is valid JSON
            } else {
                // AtomicLong, LongAdder, user subclasses: their text, if it is a JSON number.
                String text = String.valueOf(v);
                if (Parser.isNumber(text)) {
                    out.append(text);
                } else {
                    unencodable("a " + v.getClass().getName() + " whose text " + text
                            + " is not a JSON number");
                }
            }
        }

        void string(CharSequence s) {
            out.append('"');
            int len = s.length();
            int run = 0; // start of the pending run of characters that need no escaping
            for (int k = 0; k < len; k++) {
                char c = s.charAt(k);
                if (c >= 0x20 && c != '"' && c != '\\' && !Character.isSurrogate(c)) {
                    continue;
                }
                if (Character.isHighSurrogate(c) && k + 1 < len
                        && Character.isLowSurrogate(s.charAt(k + 1))) {
                    k++; // a well-formed pair: written as is, UTF-8 encoding makes it 4 bytes
                    continue;
                }
                out.append(s, run, k);
                run = k + 1;
                switch (c) {
                    case '"':
                        out.append("\\\"");
                        break;
                    case '\\':
                        out.append("\\\\");
                        break;
                    case '\n':
                        out.append("\\n");
                        break;
                    case '\r':
                        out.append("\\r");
                        break;
                    case '\t':
                        out.append("\\t");
                        break;
                    case '\b':
                        out.append("\\b");
                        break;
                    case '\f':
                        out.append("\\f");
                        break;
                    default:
                        if (Character.isSurrogate(c)) {
                            if (strict) {
                                throw new SerializationException(String.format(
                                        "a string with a lone surrogate U+%04X at index %d", (int) c, k));
                            }
                            out.append('\ufffd');
                        } else {
                            out.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 0xf]);
                        }
                }
            }
            out.append(s, run, len).append('"');
        }
    }
}
