// The context a runwarm C# handler receives next to its event. Scripts reference it by compiling
// against runwarm.exe (`mcs -target:library -r:runwarm.exe ...`).

using System;
using System.Collections;
using System.Collections.Generic;

namespace Runwarm
{
    /// <summary>Who called, from the supervisor socket's peer credentials.</summary>
    public sealed class Caller
    {
        public long Uid { get; internal set; }
        public long Gid { get; internal set; }
        public long Pid { get; internal set; }
    }

    /// <summary>
    /// What a handler gets besides the event. <see cref="Log"/> sends a structured record tagged
    /// with the request, so the supervisor files it under this execution.
    /// </summary>
    public sealed class Context
    {
        private static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        private readonly Channel _channel;

        internal Context(string requestId, Dictionary<string, object> ctx, Channel channel)
        {
            _channel = channel;
            RequestId = requestId;
            ExecutionId = Get(ctx, "execution_id") as string ?? "";
            DeadlineMs = AsLong(Get(ctx, "deadline_ms"), 0);
            Attempt = (int)AsLong(Get(ctx, "attempt"), 1);
            var caller = Get(ctx, "caller") as Dictionary<string, object>;
            Caller = new Caller
            {
                Uid = AsLong(Get(caller, "uid"), 0),
                Gid = AsLong(Get(caller, "gid"), 0),
                Pid = AsLong(Get(caller, "pid"), 0),
            };
        }

        public string RequestId { get; private set; }
        public string ExecutionId { get; private set; }
        /// <summary>Deadline in milliseconds since the Unix epoch.</summary>
        public long DeadlineMs { get; private set; }
        /// <summary>Attempt number, from 1.</summary>
        public int Attempt { get; private set; }
        public Caller Caller { get; private set; }

        public long RemainingMs()
        {
            long now = (long)(DateTime.UtcNow - Epoch).TotalMilliseconds;
            return Math.Max(0, DeadlineMs - now);
        }

        /// <summary>The property AWS Lambda's .NET context has, so ported handlers keep working.</summary>
        public TimeSpan RemainingTime
        {
            get { return TimeSpan.FromMilliseconds(RemainingMs()); }
        }

        /// <summary>
        /// Sends a protocol log record for this request. <paramref name="fields"/> is a dictionary
        /// or any object whose public properties become the fields (an anonymous type works).
        /// </summary>
        public void Log(string message, string level = "info", object fields = null)
        {
            var sb = new System.Text.StringBuilder(128);
            sb.Append("{\"type\":\"log\",\"id\":").Append(Json.Serialize(RequestId, false))
                .Append(",\"level\":").Append(Json.Serialize(level ?? "info", false))
                .Append(",\"message\":").Append(Json.Serialize(message ?? "", false));
            string encoded = EncodeFields(fields);
            if (encoded != null)
                sb.Append(",\"fields\":").Append(encoded);
            sb.Append("}\n");
            Executor.FlushUserOutput();
            _channel.SendLine(sb.ToString());
        }

        /// <summary>The fields as a JSON object, or null when there are none.</summary>
        private static string EncodeFields(object fields)
        {
            if (fields == null)
                return null;
            string encoded;
            try
            {
                encoded = Json.Serialize(fields, false);
            }
            catch (JsonException)
            {
                // Keep the record; lose only the values that have no JSON form.
                var plain = new Dictionary<string, object>();
                var dict = fields as IDictionary;
                if (dict == null)
                    plain["value"] = fields.ToString();
                else
                    foreach (DictionaryEntry e in dict)
                        plain[Convert.ToString(e.Key)] = e.Value == null ? null : e.Value.ToString();
                encoded = Json.Serialize(plain, false);
            }
            if (encoded == "{}")
                return null;
            // The protocol's `fields` is an object; a list or a scalar gets a name.
            return encoded[0] == '{' ? encoded : "{\"value\":" + encoded + "}";
        }

        private static object Get(Dictionary<string, object> d, string key)
        {
            object v;
            return d != null && d.TryGetValue(key, out v) ? v : null;
        }

        private static long AsLong(object v, long fallback)
        {
            if (v is long) return (long)v;
            if (v is double) return (long)(double)v;
            return fallback;
        }
    }
}
