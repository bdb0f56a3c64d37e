// Normalises a list of records: keys trimmed, lowercased, inner spaces and dashes become "_"
// ("  Customer Name" -> "customer_name"); string values trimmed, blank strings become null;
// records with no non-null value are dropped. The values of one field (default "amount",
// numbers or numeric strings such as " 12.50 ", which become numbers) are summed.
//
// Built once per version with mcs into a library; the Mono shim (executors/csharp) loads it
// once per executor and calls Transform.handler per request.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

public static class Transform
{
    public static object handler(Dictionary<string, object> ev, Runwarm.Context ctx)
    {
        object recordsValue;
        var input = ev.TryGetValue("records", out recordsValue) ? recordsValue as List<object> : null;
        if (input == null)
            throw new ArgumentException("records must be an array of objects");
        object sumValue;
        string sumField = ev.TryGetValue("sum_field", out sumValue) && sumValue is string
            ? NormaliseKey((string)sumValue)
            : "amount";

        var records = new List<Dictionary<string, object>>();
        var warnings = new List<string>();
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        int dropped = 0, summed = 0;
        decimal sum = 0m;

        for (int i = 0; i < input.Count; i++)
        {
            var raw = input[i] as Dictionary<string, object>;
            if (raw == null)
            {
                warnings.Add("records[" + i + "] is not an object: dropped");
                dropped++;
                continue;
            }
            var record = new Dictionary<string, object>();
            foreach (var pair in raw)
            {
                string key = NormaliseKey(pair.Key);
                if (key.Length == 0)
                {
                    warnings.Add("records[" + i + "]: a blank key was dropped");
                    continue;
                }
                if (record.ContainsKey(key))
                    warnings.Add("records[" + i + "]: \"" + pair.Key + "\" collides with another key as \"" + key + "\"; the later value wins");
                record[key] = NormaliseValue(pair.Value);
            }
            if (record.Values.All(v => v == null))
            {
                dropped++;
                continue;
            }
            object field;
            if (record.TryGetValue(sumField, out field) && field != null)
            {
                decimal n;
                if (TryNumber(field, out n))
                {
                    sum += n;
                    summed++;
                    if (field is string)
                        record[sumField] = (double)n; // " 7.25 " -> 7.25
                }
                else
                {
                    warnings.Add("records[" + i + "]." + sumField + " is not a number: " + field);
                }
            }
            foreach (var k in record.Keys)
                keys.Add(k);
            records.Add(record);
        }

        ctx.Log("records normalised", "info", new { kept = records.Count, dropped = dropped });
        return new Dictionary<string, object>
        {
            { "records", records },
            { "count", records.Count },
            { "dropped", dropped },
            { "keys", keys.ToList() },
            { "sum", new Dictionary<string, object> { { "field", sumField }, { "total", (double)sum }, { "values", summed } } },
            { "warnings", warnings },
        };
    }

    /// "  Customer Name " -> "customer_name", "E-Mail" -> "e_mail".
    static string NormaliseKey(string key)
    {
        var sb = new StringBuilder();
        bool gap = false;
        foreach (char c in key.Trim().ToLowerInvariant())
        {
            if (char.IsWhiteSpace(c) || c == '-' || c == '_')
            {
                gap = sb.Length > 0;
                continue;
            }
            if (gap)
                sb.Append('_');
            gap = false;
            sb.Append(c);
        }
        return sb.ToString();
    }

    static object NormaliseValue(object value)
    {
        var s = value as string;
        if (s == null)
            return value;
        s = s.Trim();
        return s.Length == 0 ? null : s;
    }

    static bool TryNumber(object value, out decimal n)
    {
        n = 0m;
        try
        {
            if (value is long || value is double)
            {
                n = Convert.ToDecimal(value, CultureInfo.InvariantCulture);
                return true;
            }
        }
        catch (OverflowException)
        {
            return false;
        }
        var s = value as string;
        return s != null && decimal.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out n);
    }
}
