// Checks of runwarm.Json that the vectors cannot make: the vector runner re-encodes every message
// with serde_json, so escapes, malformed input and numbers at the edges never reach the shim that
// way. Run by protocol/tests/vectors_java.rs; exits 1 and lists the failures if any check fails.

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import runwarm.Json;

public final class JsonTest {
    private static final List<String> FAILURES = new ArrayList<>();
    private static int checks;

    private JsonTest() {}

    private static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            FAILURES.add(what);
        }
    }

    private static void same(Object got, Object want, String what) {
        check(want == null ? got == null : want.equals(got) && want.getClass() == got.getClass(),
                what + ": got " + describe(got) + ", want " + describe(want));
    }

    private static String describe(Object v) {
        return v == null ? "null" : v + " (" + v.getClass().getSimpleName() + ")";
    }

    private static void rejects(String text, String why) {
        try {
            Object v = Json.parse(text);
            check(false, why + ": " + escape(text) + " parsed as " + describe(v));
        } catch (Json.ParseException e) {
            check(e.getMessage().startsWith("invalid JSON at offset " + e.offset() + ": "),
                    why + ": message does not name the offset: " + e.getMessage());
        } catch (RuntimeException | StackOverflowError e) {
            check(false, why + ": " + escape(text) + " threw " + e + " instead of ParseException");
        }
    }

    private static void unwritable(Object value, String why) {
        try {
            String json = Json.write(value);
            check(false, why + ": written as " + escape(json));
        } catch (Json.SerializationException e) {
            check(true, why);
        } catch (RuntimeException | StackOverflowError e) {
            check(false, why + ": threw " + e + " instead of SerializationException");
        }
    }

    private static String escape(String s) {
        StringBuilder sb = new StringBuilder();
        for (char c : s.toCharArray()) {
            sb.append(c < 0x20 || c > 0x7e ? String.format("\\u%04x", (int) c) : String.valueOf(c));
        }
        return sb.toString();
    }

    public static void main(String[] args) {
        parsesScalars();
        parsesContainers();
        rejectsMalformedInput();
        writesStrings();
        writesValues();
        refusesUnencodableValues();
        roundTrips();
        if (FAILURES.isEmpty()) {
            System.out.println("JsonTest: " + checks + " checks passed");
            return;
        }
        System.out.println("JsonTest: " + FAILURES.size() + " of " + checks + " checks failed:");
        FAILURES.forEach(f -> System.out.println("  - " + f));
        System.exit(1);
    }

    private static void parsesScalars() {
        same(Json.parse("0"), 0L, "zero");
        same(Json.parse("-0"), 0L, "negative zero integer");
        same(Json.parse("9223372036854775807"), Long.MAX_VALUE, "Long.MAX_VALUE");
        same(Json.parse("-9223372036854775808"), Long.MIN_VALUE, "Long.MIN_VALUE");
        same(Json.parse("9223372036854775808"), new BigInteger("9223372036854775808"), "Long.MAX_VALUE + 1");
        same(Json.parse("-123456789012345678901234567890"),
                new BigInteger("-123456789012345678901234567890"), "huge negative integer");
        same(Json.parse("1.5"), 1.5, "fraction");
        same(Json.parse("1e2"), 100.0, "an exponent makes a Double");
        same(Json.parse("1.0"), 1.0, "1.0 stays a Double");
        same(Json.parse("-2.5E-8"), -2.5e-8, "negative exponent");
        same(Json.parse("1e400"), new BigDecimal("1e400"), "overflowing double");
        same(Json.parse("true"), Boolean.TRUE, "true");
        same(Json.parse("false"), Boolean.FALSE, "false");
        same(Json.parse("null"), null, "null");
        same(Json.parse(" \t\r\n\"x\" \n"), "x", "surrounding whitespace");
        same(Json.parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), "\"\\/\b\f\n\r\t", "simple escapes");
        same(Json.parse("\"\\u00e9\\u00C9\\u0000\""), "\u00e9\u00c9\u0000", "\\u escapes");
        same(Json.parse("\"\\ud83d\\ude00\""), "\ud83d\ude00", "escaped surrogate pair");
        same(Json.parse("\"\ud83d\ude00 \u2028 \u00e9\""), "\ud83d\ude00 \u2028 \u00e9", "raw non-ASCII");
        same(Json.parse("\"\\udc00\""), "\udc00", "escaped lone surrogate is read (RFC 8259 8.2)");
        same(Json.parse("\"\u007f\""), "\u007f", "DEL needs no escape");
    }

    private static void parsesContainers() {
        Object v = Json.parse("{\"b\":1,\"a\":[true,{}],\"b\":2,\"c\":[]}");
        check(v instanceof LinkedHashMap, "objects are LinkedHashMaps: " + describe(v));
        Map<?, ?> m = (Map<?, ?>) v;
        same(new ArrayList<>(m.keySet()).toString(), "[b, a, c]", "member order, duplicate in place");
        same(m.get("b"), 2L, "last duplicate wins");
        check(m.get("a") instanceof ArrayList, "arrays are ArrayLists: " + describe(m.get("a")));
        same(Json.parse(" [ 1 , [ ] , { } ] "), new ArrayList<>(Arrays.asList(1L, List.of(), Map.of())),
                "whitespace inside containers");
        String deep = "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH);
        check(Json.parse(deep) instanceof List, "nesting of exactly MAX_DEPTH is accepted");
    }

    private static void rejectsMalformedInput() {
        String[][] cases = {
            {"", "empty input"}, {"   ", "only whitespace"}, {"[1,]", "trailing comma in array"},
            {"{\"a\":1,}", "trailing comma in object"}, {"01", "leading zero"}, {"-01", "leading zero"},
            {"1.", "no digit after the point"}, {".5", "no digit before the point"},
            {"+1", "plus sign"}, {"-", "lone minus"}, {"1e", "empty exponent"}, {"1e+", "empty exponent"},
            {"NaN", "NaN"}, {"Infinity", "Infinity"}, {"-Infinity", "-Infinity"}, {"'a'", "single quotes"},
            {"[1 2]", "missing comma"}, {"{\"a\" 1}", "missing colon"}, {"{a:1}", "bare member name"},
            {"{1:1}", "number as member name"}, {"\"\\x\"", "unknown escape"}, {"\"\\u12G4\"", "bad hex"},
            {"\"\\u12\"", "short \\u escape"}, {"\"\\u\uff11\uff12\uff13\uff14\"", "non-ASCII digits in \\u"},
            {"\"tab\there\"", "raw tab in a string"}, {"\"line\nbreak\"", "raw newline in a string"},
            {"\"\u0000\"", "raw NUL in a string"}, {"[1]x", "trailing garbage"}, {"1 2", "two values"},
            {"tru", "truncated literal"}, {"nul", "truncated literal"}, {"True", "capitalised literal"},
            {"\ufeff[]", "byte order mark"}, {"/*c*/1", "comment"}, {"[", "unclosed array"},
            {"{", "unclosed object"}, {"{\"a\":", "missing value"}, {"\"open", "unterminated string"},
            {"\"\\", "unterminated escape"}, {"[1,,2]", "double comma"}, {"[,1]", "leading comma"},
        };
        for (String[] c : cases) {
            rejects(c[0], c[1]);
        }
        rejects("[".repeat(Json.MAX_DEPTH + 1) + "]".repeat(Json.MAX_DEPTH + 1), "nesting too deep");
        rejects("[".repeat(200_000), "very deep nesting fails cleanly, without StackOverflowError");
        try {
            Json.parse("[1, x]");
        } catch (Json.ParseException e) {
            same(e.offset(), 4, "offset of the offending character");
            check(e.getMessage().contains("'x'"), "message names the character: " + e.getMessage());
        }
    }

    private static void writesStrings() {
        same(Json.write("plain"), "\"plain\"", "plain string");
        same(Json.write("q\"b\\s/"), "\"q\\\"b\\\\s/\"", "quote and backslash escaped, slash not");
        same(Json.write("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"", "short escapes");
        same(Json.write("\u0000\u0001\u001f\u007f"), "\"\\u0000\\u0001\\u001f\u007f\"",
                "other control characters as \\u00XX, DEL raw");
        same(Json.write("\u00e9\u4e2d\ud83d\ude00\u2028"), "\"\u00e9\u4e2d\ud83d\ude00\u2028\"",
                "non-ASCII and non-BMP written as is");
        same(Json.write("a\ud83d\ude00b\nc"), "\"a\ud83d\ude00b\\nc\"", "pair between escapes");
    }

    private static void writesValues() {
        Map<Object, Object> m = new LinkedHashMap<>();
        m.put("s", "x");
        m.put(7, 1L);
        m.put(null, true);
        m.put("list", Arrays.asList(1, 2.5, null, false));
        m.put("nested", Map.of("k", List.of()));
        same(Json.write(m), "{\"s\":\"x\",\"7\":1,\"null\":true,\"list\":[1,2.5,null,false],"
                + "\"nested\":{\"k\":[]}}", "map with non-string keys");
        same(Json.write(new int[] {1, -2}), "[1,-2]", "int[]");
        same(Json.write(new Object[] {"a", null}), "[\"a\",null]", "Object[]");
        same(Json.write(new char[] {'h', 'i'}), "\"hi\"", "char[] is a string");
        same(Json.write(1e300), "1.0E300", "large double");
        same(Json.write(-0.0), "-0.0", "negative zero");
        same(Json.write(0.1f), "0.1", "float");
        same(Json.write(new BigDecimal("1.50")), "1.50", "BigDecimal keeps its scale");
        same(Json.write(new java.util.concurrent.atomic.AtomicLong(42)), "42", "other Number");
        same(Json.write(Thread.State.NEW), "\"NEW\"", "enum by name");
        same(Json.write(java.util.Optional.empty()), "null", "empty Optional");
        same(Json.write(new Object() {
            @Override
            public String toString() {
                return "custom";
            }
        }), "\"custom\"", "other objects by toString()");
        Map<String, Object> shared = Map.of("k", 1L);
        same(Json.write(List.of(shared, shared)), "[{\"k\":1},{\"k\":1}]", "a shared value is not a cycle");
    }

    private static void refusesUnencodableValues() {
        unwritable(Double.NaN, "NaN");
        unwritable(Double.POSITIVE_INFINITY, "Infinity");
        unwritable(Float.NEGATIVE_INFINITY, "float -Infinity");
        unwritable("lone \ud800 high surrogate", "lone high surrogate");
        unwritable("lone \udc00 low surrogate", "lone low surrogate");
        unwritable("\ude00\ud83d", "reversed pair");
        unwritable(Map.of("\ud800", 1), "lone surrogate in a key");
        Map<String, Object> cyclic = new HashMap<>();
        cyclic.put("self", cyclic);
        unwritable(cyclic, "map that contains itself");
        Object[] array = new Object[1];
        array[0] = array;
        unwritable(array, "array that contains itself");
        List<Object> deep = new ArrayList<>();
        List<Object> at = deep;
        for (int k = 0; k < 5000; k++) {
            List<Object> next = new ArrayList<>();
            at.add(next);
            at = next;
        }
        unwritable(deep, "nesting deeper than MAX_DEPTH");
        unwritable(new Object() {
            @Override
            public String toString() {
                throw new IllegalStateException("no text");
            }
        }, "toString() that throws");
    }

    private static void roundTrips() {
        String text = "{\"s\":\"\u00e9 \ud83d\ude00 \\\"q\\\" \\\\ \\n\\t\\u0001 \u2028\",\"n\":[0,-1,"
                + "9007199254740993,12345678901234567890,-9223372036854775808,1.5,-2.5E-8,1.0E300],"
                + "\"e\":{},\"a\":[],\"z\":null,\"b\":[true,false]}";
        Object once = Json.parse(text);
        same(Json.write(once), text, "parse then write is the identity on canonical text");
        same(Json.parse(Json.write(once)), once, "write then parse is the identity");
    }
}
