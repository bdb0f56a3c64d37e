// Strict JSON (RFC 8259) for the runwarm C# shim. Debian's mono-runtime ships neither
// System.Web.Extensions nor System.Runtime.Serialization, and a warm executor should not depend
// on NuGet, so the shim carries its own small reader and writer.
//
// Reading: objects -> Dictionary<string, object>, arrays -> List<object>, integral numbers that
// fit -> long, other numbers -> double, strings, bools, null.
// Writing: the above, every primitive, IDictionary, IEnumerable, and other objects (anonymous
// types, POCOs) by their public instance properties.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Text;
using System.Threading.Tasks;

namespace Runwarm
{
    /// <summary>A value that has no JSON encoding, or text that is not JSON.</summary>
    public sealed class JsonException : Exception
    {
        public JsonException(string message) : base(message) { }
    }

    public static class Json
    {
        /// <summary>Deeper structures are refused: a cycle would otherwise overflow the stack.</summary>
        public const int MaxDepth = 512;

        public static object Parse(string text)
        {
            var reader = new Reader(text);
            reader.SkipWhitespace();
            object value = reader.ReadValue(0);
            reader.SkipWhitespace();
            if (!reader.AtEnd)
                throw reader.Error("unexpected text after the value");
            return value;
        }

        /// <summary>
        /// Encodes <paramref name="value"/>. With <paramref name="strict"/>, a string holding a lone
        /// UTF-16 surrogate is an error (it has no UTF-8 form); otherwise it becomes U+FFFD.
        /// </summary>
        public static string Serialize(object value, bool strict = true)
        {
            var sb = new StringBuilder(128);
            new Writer(sb, strict).Write(value, 0);
            return sb.ToString();
        }

        private sealed class Reader
        {
            private readonly string _s;
            private int _i;

            public Reader(string s)
            {
                _s = s;
            }

            public bool AtEnd
            {
                get { return _i >= _s.Length; }
            }

            public JsonException Error(string what)
            {
                return new JsonException(what + " at offset " + _i);
            }

            public void SkipWhitespace()
            {
                while (_i < _s.Length)
                {
                    char c = _s[_i];
                    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                        break;
                    _i++;
                }
            }

            public object ReadValue(int depth)
            {
                if (depth > MaxDepth)
                    throw Error("nesting deeper than " + MaxDepth);
                if (AtEnd)
                    throw Error("unexpected end of input");
                char c = _s[_i];
                switch (c)
                {
                    case '{':
                        return ReadObject(depth);
                    case '[':
                        return ReadArray(depth);
                    case '"':
                        return ReadString();
                    case 't':
                        Expect("true");
                        return true;
                    case 'f':
                        Expect("false");
                        return false;
                    case 'n':
                        Expect("null");
                        return null;
                    default:
                        if (c == '-' || (c >= '0' && c <= '9'))
                            return ReadNumber();
                        throw Error("unexpected character '" + c + "'");
                }
            }

            private void Expect(string word)
            {
                if (string.CompareOrdinal(_s, _i, word, 0, word.Length) != 0)
                    throw Error("invalid literal");
                _i += word.Length;
            }

            private Dictionary<string, object> ReadObject(int depth)
            {
                var obj = new Dictionary<string, object>();
                _i++;
                SkipWhitespace();
                if (!AtEnd && _s[_i] == '}')
                {
                    _i++;
                    return obj;
                }
                while (true)
                {
                    SkipWhitespace();
                    if (AtEnd || _s[_i] != '"')
                        throw Error("expected a member name");
                    string key = ReadString();
                    SkipWhitespace();
                    if (AtEnd || _s[_i] != ':')
                        throw Error("expected ':'");
                    _i++;
                    SkipWhitespace();
                    // Duplicate names: the last one wins, as in most JSON libraries.
                    obj[key] = ReadValue(depth + 1);
                    SkipWhitespace();
                    if (AtEnd)
                        throw Error("unterminated object");
                    char c = _s[_i++];
                    if (c == '}')
                        return obj;
                    if (c != ',')
                        throw Error("expected ',' or '}'");
                }
            }

            private List<object> ReadArray(int depth)
            {
                var list = new List<object>();
                _i++;
                SkipWhitespace();
                if (!AtEnd && _s[_i] == ']')
                {
                    _i++;
                    return list;
                }
                while (true)
                {
                    SkipWhitespace();
                    list.Add(ReadValue(depth + 1));
                    SkipWhitespace();
                    if (AtEnd)
                        throw Error("unterminated array");
                    char c = _s[_i++];
                    if (c == ']')
                        return list;
                    if (c != ',')
                        throw Error("expected ',' or ']'");
                }
            }

            private string ReadString()
            {
                _i++; // opening quote
                int start = _i;
                // Fast path: no escapes.
                while (_i < _s.Length)
                {
                    char c = _s[_i];
                    if (c == '"')
                    {
                        string plain = _s.Substring(start, _i - start);
                        _i++;
                        return plain;
                    }
                    if (c == '\\')
                        break;
                    if (c < 0x20)
                        throw Error("control character in string");
                    _i++;
                }
                var sb = new StringBuilder(_s, start, _i - start, (_i - start) + 16);
                while (true)
                {
                    if (AtEnd)
                        throw Error("unterminated string");
                    char c = _s[_i++];
                    if (c == '"')
                        return sb.ToString();
                    if (c < 0x20)
                        throw Error("control character in string");
                    if (c != '\\')
                    {
                        sb.Append(c);
                        continue;
                    }
                    if (AtEnd)
                        throw Error("unterminated escape");
                    char e = _s[_i++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            if (_i + 4 > _s.Length)
                                throw Error("short \\u escape");
                            int code = 0;
                            for (int k = 0; k < 4; k++)
                            {
                                int h = HexValue(_s[_i + k]);
                                if (h < 0)
                                    throw Error("invalid \\u escape");
                                code = (code << 4) | h;
                            }
                            _i += 4;
                            sb.Append((char)code);
                            break;
                        default:
                            throw Error("invalid escape '\\" + e + "'");
                    }
                }
            }

            private static int HexValue(char c)
            {
                if (c >= '0' && c <= '9') return c - '0';
                if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                return -1;
            }

            private object ReadNumber()
            {
                int start = _i;
                if (_s[_i] == '-')
                    _i++;
                if (AtEnd)
                    throw Error("invalid number");
                if (_s[_i] == '0')
                {
                    _i++;
                }
                else if (_s[_i] >= '1' && _s[_i] <= '9')
                {
                    while (!AtEnd && _s[_i] >= '0' && _s[_i] <= '9') _i++;
                }
                else
                {
                    throw Error("invalid number");
                }
                bool integral = true;
                if (!AtEnd && _s[_i] == '.')
                {
                    integral = false;
                    _i++;
                    int digits = _i;
                    while (!AtEnd && _s[_i] >= '0' && _s[_i] <= '9') _i++;
                    if (_i == digits)
                        throw Error("invalid number");
                }
                if (!AtEnd && (_s[_i] == 'e' || _s[_i] == 'E'))
                {
                    integral = false;
                    _i++;
                    if (!AtEnd && (_s[_i] == '+' || _s[_i] == '-')) _i++;
                    int digits = _i;
                    while (!AtEnd && _s[_i] >= '0' && _s[_i] <= '9') _i++;
                    if (_i == digits)
                        throw Error("invalid number");
                }
                string text = _s.Substring(start, _i - start);
                long l;
                if (integral && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l))
                    return l;
                try
                {
                    double d = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
                    // Mono's parser drops the sign of a negative zero.
                    return d == 0 && text[0] == '-' ? -0.0 : d;
                }
                catch (OverflowException)
                {
                    // Mono throws where IEEE 754 (and Python, and JavaScript) say infinity.
                    return text[0] == '-' ? double.NegativeInfinity : double.PositiveInfinity;
                }
            }
        }

        private sealed class Writer
        {
            private readonly StringBuilder _sb;
            private readonly bool _strict;

            public Writer(StringBuilder sb, bool strict)
            {
                _sb = sb;
                _strict = strict;
            }

            public void Write(object value, int depth)
            {
                if (depth > MaxDepth)
                    throw new JsonException("nesting deeper than " + MaxDepth + " (a cycle?)");
                if (value == null || value is DBNull)
                {
                    _sb.Append("null");
                    return;
                }
                var s = value as string;
                if (s != null)
                {
                    WriteString(s);
                    return;
                }
                switch (Type.GetTypeCode(value.GetType()))
                {
                    case TypeCode.Boolean:
                        _sb.Append((bool)value ? "true" : "false");
                        return;
                    case TypeCode.Char:
                        WriteString(value.ToString());
                        return;
                    case TypeCode.SByte:
                    case TypeCode.Byte:
                    case TypeCode.Int16:
                    case TypeCode.UInt16:
                    case TypeCode.Int32:
                    case TypeCode.UInt32:
                    case TypeCode.Int64:
                    case TypeCode.UInt64:
                        // Enums land here too and are written as numbers, as System.Text.Json does.
                        _sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                        return;
                    case TypeCode.Single:
                    case TypeCode.Double:
                        WriteDouble(Convert.ToDouble(value, CultureInfo.InvariantCulture), value);
                        return;
                    case TypeCode.Decimal:
                        _sb.Append(((decimal)value).ToString(CultureInfo.InvariantCulture));
                        return;
                    case TypeCode.DateTime:
                        WriteString(((DateTime)value).ToString("o", CultureInfo.InvariantCulture));
                        return;
                }
                if (value is DateTimeOffset)
                {
                    WriteString(((DateTimeOffset)value).ToString("o", CultureInfo.InvariantCulture));
                    return;
                }
                if (value is Guid || value is TimeSpan || value is Uri || value is Version)
                {
                    WriteString(Convert.ToString(value, CultureInfo.InvariantCulture));
                    return;
                }
                var bytes = value as byte[];
                if (bytes != null)
                {
                    WriteString(Convert.ToBase64String(bytes));
                    return;
                }
                var dict = value as IDictionary;
                if (dict != null)
                {
                    WriteDictionary(dict, depth);
                    return;
                }
                var seq = value as IEnumerable;
                if (seq != null)
                {
                    _sb.Append('[');
                    bool first = true;
                    foreach (object item in seq)
                    {
                        if (!first) _sb.Append(',');
                        first = false;
                        Write(item, depth + 1);
                    }
                    _sb.Append(']');
                    return;
                }
                WriteObject(value, depth);
            }

            private void WriteDouble(double d, object original)
            {
                if (double.IsNaN(d) || double.IsInfinity(d))
                    throw new JsonException(original + " has no JSON encoding");
                // "R" round-trips; a float goes through its own "R" so 0.1f stays 0.1.
                string text = original is float
                    ? ((float)original).ToString("R", CultureInfo.InvariantCulture)
                    : d.ToString("R", CultureInfo.InvariantCulture);
                if (d == 0 && double.IsNegative(d))
                    text = "-0.0";
                else if (text.IndexOfAny(FloatMarks) < 0)
                    text += ".0"; // a float stays a float on the other side, as in Python
                _sb.Append(text);
            }

            private static readonly char[] FloatMarks = { '.', 'E', 'e' };

            private void WriteDictionary(IDictionary dict, int depth)
            {
                _sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry entry in dict)
                {
                    string key = entry.Key as string;
                    if (key == null)
                    {
                        var code = Type.GetTypeCode(entry.Key.GetType());
                        if (code == TypeCode.Object || code == TypeCode.Boolean || code == TypeCode.Empty)
                            throw new JsonException("a " + entry.Key.GetType().Name + " dictionary key has no JSON encoding");
                        key = Convert.ToString(entry.Key, CultureInfo.InvariantCulture);
                    }
                    if (!first) _sb.Append(',');
                    first = false;
                    WriteString(key);
                    _sb.Append(':');
                    Write(entry.Value, depth + 1);
                }
                _sb.Append('}');
            }

            private void WriteObject(object value, int depth)
            {
                Type type = value.GetType();
                if (value is Delegate || value is Task || value is MemberInfo || value is Assembly
                    || value is Stream || value is IntPtr || value is UIntPtr || type.IsPointer)
                    throw new JsonException("a " + type.Name + " has no JSON encoding");
                PropertyInfo[] props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance);
                _sb.Append('{');
                bool first = true;
                foreach (PropertyInfo p in props)
                {
                    if (!p.CanRead || p.GetIndexParameters().Length != 0 || p.GetGetMethod() == null)
                        continue;
                    object v;
                    try
                    {
                        v = p.GetValue(value, null);
                    }
                    catch (TargetInvocationException e)
                    {
                        throw new JsonException(type.Name + "." + p.Name + " threw " + e.InnerException.GetType().Name);
                    }
                    if (!first) _sb.Append(',');
                    first = false;
                    WriteString(p.Name);
                    _sb.Append(':');
                    Write(v, depth + 1);
                }
                if (first && !type.IsValueType && type.Namespace != null && type.Namespace.StartsWith("System", StringComparison.Ordinal))
                    throw new JsonException("a " + type.FullName + " has no JSON encoding");
                _sb.Append('}');
            }

            private void WriteString(string s)
            {
                _sb.Append('"');
                int run = 0;
                for (int i = 0; i < s.Length; i++)
                {
                    char c = s[i];
                    string esc = null;
                    if (c == '"') esc = "\\\"";
                    else if (c == '\\') esc = "\\\\";
                    else if (c < 0x20)
                    {
                        switch (c)
                        {
                            case '\n': esc = "\\n"; break;
                            case '\r': esc = "\\r"; break;
                            case '\t': esc = "\\t"; break;
                            case '\b': esc = "\\b"; break;
                            case '\f': esc = "\\f"; break;
                            default: esc = "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture); break;
                        }
                    }
                    else if (char.IsSurrogate(c))
                    {
                        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                        {
                            i++;
                            run += 2;
                            continue;
                        }
                        if (_strict)
                            throw new JsonException("a string holds a lone UTF-16 surrogate (U+" + ((int)c).ToString("X4", CultureInfo.InvariantCulture) + ")");
                        esc = "\uFFFD";
                    }
                    else
                    {
                        run++;
                        continue;
                    }
                    if (run > 0)
                        _sb.Append(s, i - run, run);
                    run = 0;
                    _sb.Append(esc);
                }
                if (run > 0)
                    _sb.Append(s, s.Length - run, run);
                _sb.Append('"');
            }
        }
    }
}
